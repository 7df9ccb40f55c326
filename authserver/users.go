package authserver

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ParseUsers reads local users from "name:bcrypt-hash" entries separated
// by commas or newlines, e.g. "alice:$2a$12$...,bob:$2y$12$...". Every
// entry is checked; errors name the entry and the user, never the hash.
func ParseUsers(s string) (map[string][]byte, error) {
	users := map[string][]byte{}
	var errs []error
	entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	n := 0
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		n++
		name, hash, ok := strings.Cut(e, ":")
		name, hash = strings.TrimSpace(name), strings.TrimSpace(hash)
		switch {
		case !ok || hash == "":
			errs = append(errs, fmt.Errorf("users: entry %d (%q): want name:bcrypt-hash", n, userLabel(name)))
		case name == "" || len(name) > maxUsernameLen || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			errs = append(errs, fmt.Errorf("users: entry %d: the username must be 1 to %d characters without spaces or control characters", n, maxUsernameLen))
		case strings.ContainsAny(name, `'"`):
			// docker run --env-file keeps quotes as part of the value, so
			// LOCAL_USERS='alice:...' would make the user 'alice.
			errs = append(errs, fmt.Errorf("users: entry %d (%q): the username contains a quote; remove the quotes around the value (docker --env-file keeps them literally)", n, name))
		case users[name] != nil:
			errs = append(errs, fmt.Errorf("users: entry %d (%q): the user appears more than once", n, name))
		default:
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				errs = append(errs, fmt.Errorf("users: entry %d (%q): the password hash is not a bcrypt hash (make one with: printf '%%s' 'the password' | toolgate hash-password -user %s)", n, name, name))
				continue
			}
			users[name] = []byte(hash)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return users, nil
}

// userLabel is an entry's name for an error message when the entry could
// not be split: at most a short prefix, in case a hash was pasted alone.
func userLabel(name string) string {
	if strings.HasPrefix(name, "$2") {
		return "(a hash without a name)"
	}
	return truncate(name, 32)
}
