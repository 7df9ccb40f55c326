package proxy

import (
	"fmt"
	"testing"
	"time"
)

func TestSessionBinding(t *testing.T) {
	s := newSessions(100, time.Hour)
	now := time.Now()
	s.now = func() time.Time { return now }

	s.open("alice-session", "alice")
	if !s.admit("alice-session", "alice") || s.admit("alice-session", "bob") || s.admit("alice-session", "") {
		t.Fatal("a signed-in session must admit its owner only")
	}
	if !s.admit("never-seen", "anyone") {
		t.Fatal("an unknown session must pass (another replica may have opened it)")
	}

	s.open("anon", "")
	if !s.admit("anon", "") || !s.admit("anon", "carol") {
		t.Fatal("an anonymous session admits anonymous callers and its first signed-in user")
	}
	if s.admit("anon", "") || s.admit("anon", "dave") || !s.admit("anon", "carol") {
		t.Fatal("after the upgrade the session belongs to carol alone")
	}

	s.close("alice-session")
	if !s.admit("alice-session", "bob") {
		t.Fatal("a closed session is no longer bound")
	}

	now = now.Add(2 * time.Hour)
	if !s.admit("anon", "dave") {
		t.Fatal("an idle binding expires with the TTL")
	}
}

func TestSessionStoreIsBounded(t *testing.T) {
	s := newSessions(50, time.Hour)
	for i := 0; i < 500; i++ {
		s.open(fmt.Sprint(i), "u")
	}
	if n := len(s.byID); n > 50 {
		t.Fatalf("%d bindings kept, bound is 50", n)
	}
}
