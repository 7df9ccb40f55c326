// Command toolgate is an authenticating reverse proxy for MCP servers.
// main only calls run; everything testable lives behind it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
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
