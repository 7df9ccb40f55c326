package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// runHashPassword reads a password from in (its first line) and prints its
// bcrypt hash, or name:hash with -user, ready for LOCAL_USERS. The password
// comes from stdin, never from an argument, so it stays out of shell
// history and process listings.
func runHashPassword(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	user := fs.String("user", "", "print name:hash for LOCAL_USERS instead of the bare hash")
	cost := fs.Int("cost", 12, "bcrypt cost (10–14; each step doubles the time a sign-in takes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cost < 10 || *cost > 14 {
		return fmt.Errorf("-cost must be between 10 and 14; got %d", *cost)
	}
	if strings.ContainsAny(*user, ":,\n\r\t ") {
		return fmt.Errorf("-user %q: a user name may not contain ':', ',' or white space", *user)
	}
	line, err := bufio.NewReader(io.LimitReader(in, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	password := strings.TrimRight(line, "\r\n")
	switch {
	case password == "":
		return errors.New("no password on standard input; try: printf '%s' 'the password' | toolgate hash-password -user alice")
	case len(password) > 72:
		return errors.New("the password is longer than 72 bytes, which bcrypt cannot hash")
	case len(password) < 8:
		return errors.New("the password is shorter than 8 characters")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), *cost)
	if err != nil {
		return err
	}
	if *user != "" {
		fmt.Fprintf(out, "%s:%s\n", *user, hash)
		return nil
	}
	fmt.Fprintf(out, "%s\n", hash)
	return nil
}
