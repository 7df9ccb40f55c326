package redisstore

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/toolgate/toolgate/authserver/store"
	"github.com/toolgate/toolgate/authserver/store/storetest"
)

func TestConformance(t *testing.T) {
	url := "redis://" + startRedis(t, "")
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := open(context.Background(), url, uniquePrefix())
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	})
}

func TestKeysCarryTheToolgatePrefix(t *testing.T) {
	ctx := context.Background()
	addr := startRedis(t, "")
	s, err := Open(ctx, "redis://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(ctx, "code:1", []byte("v"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	raw := redis.NewClient(&redis.Options{Addr: addr})
	defer raw.Close()
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "toolgate:code:1" {
		t.Fatalf("keys in Redis = %q, want [toolgate:code:1]", keys)
	}
	ttl, err := raw.PTTL(ctx, "toolgate:code:1").Result()
	if err != nil || ttl <= 50*time.Second || ttl > time.Minute {
		t.Fatalf("PTTL = (%v, %v), want about a minute", ttl, err)
	}

	// A key outside the prefix is invisible to the store.
	if err := raw.Set(ctx, "code:2", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "code:2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of an unprefixed key: err = %v, want ErrNotFound", err)
	}
}

func TestZeroExpiryLeavesNoTTL(t *testing.T) {
	ctx := context.Background()
	addr := startRedis(t, "")
	s, err := Open(ctx, "redis://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw := redis.NewClient(&redis.Options{Addr: addr})
	defer raw.Close()

	if err := s.Create(ctx, "k", []byte("a"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("a"), []byte("b"), time.Time{}); !ok || err != nil {
		t.Fatalf("CompareAndSwap = (%v, %v)", ok, err)
	}
	if ttl, err := raw.PTTL(ctx, "toolgate:k").Result(); err != nil || ttl != -1 {
		t.Fatalf("PTTL after a swap to no expiry = (%v, %v), want -1 (none)", ttl, err)
	}
}

func TestOpenRefusesBadURLs(t *testing.T) {
	const password = "hunter2-Secret"
	tests := []string{
		"",
		"http://127.0.0.1:6379",
		"127.0.0.1:6379",
		"redis://:" + password + "@127.0.0.1:notaport",
		"redis://user:" + password + "@127.0.0.1:6379/notadb",
		"redis://user:" + password + "@127.0.0.1:6379/0/1",
		"redis://:" + password + "@127.0.0.1:6379/?no_such_option=1",
		"redis://:" + password + "@127.0.0.1:6379/?dial_timeout=soon",
		"redis://:" + password + "@[::1\x7f]:6379",
		"u:" + password + "@127.0.0.1:6379",
		"redis:/u:" + password + "@127.0.0.1",
		"redis://127.0.0.1/u:" + password + "@x",
		"redis://u:" + strings.ReplaceAll(password, "-", "%2D") + "@127.0.0.1:6379/x",
		"redis://u:" + password + "%zz@127.0.0.1:6379",
	}
	for _, url := range tests {
		t.Run(url, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s, err := Open(ctx, url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", url)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), "REDIS_URL") {
				t.Errorf("error %q does not name REDIS_URL", err)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

func TestOpenFailsFastOnRefusedConnection(t *testing.T) {
	const password = "p@ss%2Fword"
	url := "redis://:" + password + "@127.0.0.1:" + strconv.Itoa(freePort(t))
	start := time.Now()
	s, err := Open(context.Background(), url)
	if err == nil {
		s.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if elapsed := time.Since(start); elapsed > pingTimeout {
		t.Errorf("Open took %v to fail, want under %v", elapsed, pingTimeout)
	}
	checkNoPassword(t, err, password)
}

// A server that accepts connections but never answers must not hang
// start-up: Open gives up after pingTimeout even without a deadline.
func TestOpenGivesUpOnSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent, until the listener closes
		}
	}()

	const password = "silent-secret"
	start := time.Now()
	s, err := Open(context.Background(), "redis://:"+password+"@"+l.Addr().String())
	if err == nil {
		s.Close()
		t.Fatal("Open of a silent server succeeded")
	}
	if elapsed := time.Since(start); elapsed > pingTimeout+2*time.Second {
		t.Errorf("Open took %v to fail, want about %v at most", elapsed, pingTimeout)
	}
	checkNoPassword(t, err, password)
}

func TestOpenWithPassword(t *testing.T) {
	const password = "right-horse-battery"
	addr := startRedis(t, password)
	ctx := context.Background()

	s, err := Open(ctx, "redis://:wrong-staple@"+addr)
	if err == nil {
		s.Close()
		t.Fatal("Open with a wrong password succeeded")
	}
	checkNoPassword(t, err, "wrong-staple")

	s, err = Open(ctx, "redis://:"+password+"@"+addr)
	if err != nil {
		t.Fatalf("Open with the right password: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func checkNoPassword(t *testing.T, err error, password string) {
	t.Helper()
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, "REDIS_URL") {
		t.Errorf("error %q does not name REDIS_URL", msg)
	}
	if strings.Contains(msg, password) {
		t.Errorf("error %q reveals the password", msg)
	}
	if !strings.Contains(msg, "xxxxx@") {
		t.Errorf("error %q does not show the redacted URL", msg)
	}
}

func TestRedactAndScrub(t *testing.T) {
	tests := []struct{ url, redacted string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:pw@host:1/2", "redis://xxxxx@host:1/2"},
		{"rediss://user:p@ss@host", "rediss://xxxxx@host"},
		{"redis://user@host/?a=b@c", "redis://xxxxx@host/?a=b@c"},
		{"no-scheme:pw@host", "xxxxx@host"},
		{"redis:/u:pw@host/0", "xxxxx@host/0"},
		{"redis://h/u:pw@x", "redis://xxxxx@x"},
	}
	for _, tc := range tests {
		if got := redact(tc.url); got != tc.redacted {
			t.Errorf("redact(%q) = %q, want %q", tc.url, got, tc.redacted)
		}
	}
	msg := scrub(`parse "redis://u:a%2Fb@h": said a/b and a%2Fb`, "redis://u:a%2Fb@h")
	if strings.Contains(msg, "a/b") || strings.Contains(msg, "a%2Fb") {
		t.Errorf("scrub left the password in %q", msg)
	}
}

func TestTTLMillis(t *testing.T) {
	if ms, live := ttlMillis(time.Time{}); ms != 0 || !live {
		t.Errorf("ttlMillis(zero) = (%d, %v), want (0, true)", ms, live)
	}
	if _, live := ttlMillis(time.Now().Add(-time.Second)); live {
		t.Error("ttlMillis of a past time is live")
	}
	if _, live := ttlMillis(time.Now().Add(500 * time.Microsecond)); live {
		t.Error("ttlMillis of under a millisecond is live; it must round down")
	}
	if ms, live := ttlMillis(time.Now().Add(time.Minute)); !live || ms <= 59_000 || ms > 60_000 {
		t.Errorf("ttlMillis(+1m) = (%d, %v), want about 60000", ms, live)
	}
}
