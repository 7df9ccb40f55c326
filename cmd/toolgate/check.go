package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/check"
	"github.com/toolgate/toolgate/config"
)

// exitCode ends the process with a status after a subcommand has printed
// all it had to say; main prints nothing more for it.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const checkUsage = `Usage: toolgate check [--token TOKEN | --token -] [--json] [--timeout 15s]

Checks the configuration in the environment (the same variables as the
server), the authorization server's metadata and keys, and, given a token,
whether toolgate would accept it. A token is read from stdin with --token -
or when stdin is a pipe; prefer that to --token TOKEN, which shell history
and ps can see. The token is never printed.

Exit status: 0 all good (warnings allowed), 1 a check failed or the token
would be rejected, 2 the configuration or the command line is invalid.

`

// maxTokenBytes bounds a token read from stdin; real ones are a few KiB.
const maxTokenBytes = 64 << 10

// runCheck is "toolgate check".
func runCheck(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // its messages may quote a value, which may be a token
	usage := func() {
		fs.SetOutput(stderr)
		fmt.Fprint(stderr, checkUsage)
		fs.PrintDefaults()
	}
	tokenFlag := fs.String("token", "", "the token to explain; - reads it from stdin")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 15*time.Second, "time allowed for fetching the issuer's metadata and keys")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil
		}
		msg := err.Error()
		if i := strings.Index(msg, "for flag -"); strings.HasPrefix(msg, "invalid value") && i >= 0 {
			name, _, _ := strings.Cut(msg[i+len("for flag -"):], ":")
			msg = "invalid value for -" + name
		}
		fmt.Fprintln(stderr, "toolgate check:", msg)
		usage()
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		// Never echo the argument: it may well be a token.
		fmt.Fprintln(stderr, "toolgate check takes no arguments; pass a token with --token - on stdin, or --token TOKEN")
		return exitCode(2)
	}
	tokenGiven := false
	fs.Visit(func(f *flag.Flag) { tokenGiven = tokenGiven || f.Name == "token" })
	token := *tokenFlag
	if explicit := token == "-"; explicit || !tokenGiven && piped(stdin) {
		b, err := readToken(ctx, stdin, explicit)
		switch {
		case errors.Is(err, errNoInput):
			fmt.Fprintln(stderr, "toolgate check: nothing on stdin yet; checking without a token (--token - waits for one)")
		case err != nil:
			fmt.Fprintln(stderr, "toolgate check: reading the token from stdin:", err)
			return exitCode(2)
		}
		token = string(b)
		tokenGiven = tokenGiven || strings.TrimSpace(token) != ""
	}
	token = bareToken(token)
	if tokenGiven && token == "" {
		fmt.Fprintln(stderr, "toolgate check: the token is empty")
		return exitCode(2)
	}

	rep := checkReport(ctx, environ, token, *timeout)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if c := rep.ExitCode(); c != 0 {
		return exitCode(c)
	}
	return nil
}

// stdinWait is how long an unasked-for stdin may take to deliver a token: a
// pipe that stays open and silent (ssh, some CI runners) must not hang check.
const stdinWait = 2 * time.Second

var errNoInput = errors.New("no input on stdin")

// readToken reads stdin to its end. Unless the token was asked for with
// "--token -", it gives up after stdinWait.
func readToken(ctx context.Context, stdin io.Reader, explicit bool) ([]byte, error) {
	if stdin == nil {
		return nil, nil
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(stdin, maxTokenBytes+1))
		if err == nil && len(b) > maxTokenBytes {
			err = fmt.Errorf("more than %d bytes; that is not a token", maxTokenBytes)
		}
		done <- result{b, err}
	}()
	var timeout <-chan time.Time
	if !explicit {
		t := time.NewTimer(stdinWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case r := <-done:
		return r.b, r.err
	case <-timeout:
		return nil, errNoInput
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// checkReport loads the configuration as serve does and runs the checks.
func checkReport(ctx context.Context, environ []string, token string, timeout time.Duration) *check.Report {
	cfg, err := config.Load(environ)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return check.ConfigReport(ce.Problems)
		}
		return check.ConfigReport([]string{err.Error()})
	}
	advertised, err := advertisedScopes(cfg)
	if err != nil {
		return check.ConfigReport([]string{err.Error()})
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The same kind of client serve uses for the authorization server,
	// honouring HTTPS_PROXY.
	client := &http.Client{Timeout: timeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	o := check.Options{Config: cfg, Advertised: advertised, Token: token, Client: client}
	if token != "" {
		// The verdict comes from the verifier serve builds, loaded the way
		// serve loads it, so check and server cannot disagree.
		tokens, err := newVerification(cfg, client, zap.NewNop())
		if err != nil {
			return check.ConfigReport([]string{err.Error()})
		}
		loading, stop := context.WithCancel(ctx)
		defer stop()
		go tokens.run(loading)
		awaitReady(ctx, tokens.ready)
		o.Verifier = tokens.verifier
	}
	return check.Run(ctx, o)
}

// awaitReady waits until ready reports success or a first failure (anything
// but "not loaded yet"), or ctx ends. The server would go on retrying; a
// check reports what the first attempt found.
func awaitReady(ctx context.Context, ready func() error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if err := ready(); err == nil || !errors.Is(err, auth.ErrNotReady) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// advertisedScopes is the scopes_supported serve puts in the protected-
// resource metadata: SCOPES_SUPPORTED, or with a tool policy and no
// SCOPES_SUPPORTED, REQUIRED_SCOPES plus what the tools need.
func advertisedScopes(cfg *config.Config) ([]string, error) {
	_, scopes, err := loadPolicy(cfg)
	return scopes, err
}

// piped reports whether stdin is a pipe or a file rather than a terminal
// or nothing, so "… | toolgate check" needs no flag.
func piped(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return r != nil
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeNamedPipe != 0 || fi.Mode().IsRegular()
}

// bareToken accepts a token pasted with its header: "Authorization: Bearer
// x" or "Bearer x" become x.
func bareToken(s string) string {
	s = strings.TrimSpace(s)
	if name, rest, ok := strings.Cut(s, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "authorization") {
		s = strings.TrimSpace(rest)
	}
	if scheme, rest, ok := strings.Cut(s, " "); ok && strings.EqualFold(scheme, "bearer") {
		s = strings.TrimSpace(rest)
	}
	return s
}

var marks = map[check.Status]string{check.OK: "✓", check.Warn: "!", check.Fail: "✗"}

// printReport writes the report for a person: one aligned line per check,
// a fix under each that needs one, then the token's verdict.
func printReport(w io.Writer, rep *check.Report) {
	width := 0
	for _, c := range rep.Checks {
		width = max(width, len(c.Name))
	}
	indent := strings.Repeat(" ", width+4)
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "%s %-*s  %s\n", marks[c.Status], width, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "%sfix: %s\n", indent, c.Fix)
		}
	}
	if t := rep.Token; t != nil {
		fmt.Fprintln(w)
		if t.Accepted {
			fmt.Fprintln(w, "✓ token accepted")
		} else {
			fmt.Fprintf(w, "✗ token rejected: %s\n", t.Reason)
		}
		if h := t.Header; h != nil {
			fmt.Fprintf(w, "  header  %s\n", pairs("alg", h.Alg, "kid", h.KID, "typ", h.Typ))
		}
		if c := t.Claims; c != nil {
			fmt.Fprintf(w, "  claims  %s\n", pairs("iss", c.Issuer, "sub", c.Subject, "aud", strings.Join(c.Audience, ","),
				"exp", c.Expiry, "nbf", c.NotBefore, "iat", c.IssuedAt, "scope", strings.Join(c.Scopes, " "), "client", c.ClientID))
		}
		fw := 0
		for _, f := range t.Failures {
			fw = max(fw, len(f.Check))
		}
		pad := strings.Repeat(" ", fw+4)
		for _, f := range t.Failures {
			fmt.Fprintf(w, "  ✗ %-*s  expected  %s\n", fw, f.Check, f.Expected)
			fmt.Fprintf(w, "%s  actual    %s\n", pad, f.Actual)
			if f.Fix != "" {
				fmt.Fprintf(w, "%s  fix: %s\n", pad, f.Fix)
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, summary(rep))
}

func pairs(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		if v := kv[i+1]; v != "" {
			if strings.ContainsAny(v, " \t") {
				v = fmt.Sprintf("%q", v)
			}
			parts = append(parts, kv[i]+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func summary(rep *check.Report) string {
	if rep.ExitCode() == 2 {
		return "configuration invalid: nothing else was checked"
	}
	count := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	s := count(rep.Count(check.Fail), "failure", "failures") + ", " + count(rep.Count(check.Warn), "warning", "warnings")
	if t := rep.Token; t != nil {
		if t.Accepted {
			s += "; token accepted"
		} else {
			s += "; token rejected"
		}
	}
	return s
}
