package idp

import (
	"fmt"
	"slices"
	"strings"
)

// Allow restricts who may sign in. The zero value lets in anyone the
// provider signs in. When any list is set, the user must match at least
// one of them (emails OR domains OR orgs).
//
// Email and domain rules only ever look at an email the provider says is
// verified (or Google's hd claim); an unverified address matches nothing.
// Orgs only match for GitHub, which is the only provider that reports
// organisations; with an OIDC provider an Orgs-only allowlist denies
// everyone.
type Allow struct {
	Emails  []string // exact address, case-insensitive
	Domains []string // part after '@', case-insensitive; for Google accounts, Workspace's hd claim only
	Orgs    []string // GitHub organisation logins, case-insensitive
}

func (a Allow) empty() bool {
	return len(a.Emails) == 0 && len(a.Domains) == 0 && len(a.Orgs) == 0
}

// check returns nil when id may sign in, otherwise an error wrapping
// ErrDenied whose text is safe to show the user.
func (a Allow) check(id *Identity) error {
	if a.empty() {
		return nil
	}
	if id.Email != "" && contains(a.Emails, id.Email) {
		return nil
	}
	switch {
	case id.Domain != "":
		// Google Workspace says which organisation owns the account. A
		// consumer Google account can have a verified address at any
		// domain (a former employee's, say), so with hd present only hd
		// counts, and Google accounts without hd never match a domain.
		if contains(a.Domains, id.Domain) {
			return nil
		}
	case id.Email != "" && !id.googleConsumer:
		if contains(a.Domains, emailDomain(id.Email)) {
			return nil
		}
	}
	for _, org := range id.Orgs {
		if contains(a.Orgs, org) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrDenied, a.denial(id))
}

// denial says, in words for the user, which rules the account failed.
func (a Allow) denial(id *Identity) string {
	var kinds []string
	if len(a.Emails) > 0 {
		kinds = append(kinds, "emails")
	}
	if len(a.Domains) > 0 {
		kinds = append(kinds, "domains")
	}
	if len(a.Orgs) > 0 {
		kinds = append(kinds, "organisations")
	}
	list := kinds[0]
	if n := len(kinds); n > 1 {
		list = strings.Join(kinds[:n-1], ", ") + " or " + kinds[n-1]
	}
	msg := fmt.Sprintf("%s is not in the allowed %s", who(id), list)
	if id.Email == "" && (len(a.Emails) > 0 || len(a.Domains) > 0) {
		msg += " (the provider reported no verified email address)"
	}
	return msg
}

// who names the account the way the user knows it.
func who(id *Identity) string {
	switch {
	case id.Email != "":
		return id.Email
	case id.Username != "":
		return id.Username
	}
	return "this account"
}

func emailDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ""
	}
	return email[at+1:]
}

// contains compares case-insensitively and tolerates stray spaces and a
// leading '@' in configured entries ("@example.com").
func contains(list []string, v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return false
	}
	return slices.ContainsFunc(list, func(entry string) bool {
		entry = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(entry)), "@")
		return entry == v
	})
}
