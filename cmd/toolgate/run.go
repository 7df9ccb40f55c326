package main

import (
	"context"
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `toolgate: an authenticating reverse proxy for MCP servers

Usage:
  toolgate            serve, configured by environment variables (see README.md)
  toolgate demo       run a sample MCP server with toolgate in front of it, as
                      its authorization server too, on 127.0.0.1:8080 (-addr to change)
  toolgate check      check the configuration, the authorization server and,
                      given a token (--token - reads stdin), whether toolgate
                      would accept it; --json for machines, -h for more
  toolgate hash-password [-user NAME] [-cost 10-14]
                      read a password on stdin and print its bcrypt hash for LOCAL_USERS
  toolgate version    print the version
`

// run dispatches subcommands; it returns instead of exiting so tests can
// drive start-up with their own environment.
func run(ctx context.Context, args, environ []string) error {
	if len(args) == 0 || args[0] == "serve" {
		return serve(ctx, environ, nil)
	}
	switch args[0] {
	case "check":
		return runCheck(ctx, args[1:], environ, os.Stdin, os.Stdout, os.Stderr)
	case "demo":
		return runDemo(ctx, args[1:], environ, os.Stdout)
	case "hash-password":
		return runHashPassword(args[1:], os.Stdin, os.Stdout)
	case "version", "--version":
		fmt.Println("toolgate", version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
