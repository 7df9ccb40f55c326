// Command toolgate is an authenticating reverse proxy for MCP servers.
// main only calls run; everything testable lives behind it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// toolgate's live heap is a few MiB; collecting at 4x instead of 2x
		// of it costs tens of MiB and saves about a tenth of the CPU per
		// request under load. GOGC set in the environment wins.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ())
	stop()
	var code exitCode
	if errors.As(err, &code) {
		os.Exit(int(code)) // the subcommand has said everything already
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "toolgate:", err)
		os.Exit(1)
	}
}
