// Package storetest is the conformance suite every store.Store must pass.
// It pins each promise of the store package (expiry, single-use Take,
// atomic Create and CompareAndSwap, binary values) so that the file store
// and the Redis store behave alike and the authorization server can rely
// on either without knowing which it has.
//
// Beyond store.go, the suite pins two choices made for all stores:
//   - Create or CompareAndSwap with an expiry already in the past leaves
//     no live entry (it is as if the entry expired at once).
//   - An operation called with a context that is already done returns an
//     error wrapping the context's error and changes nothing.
//
// Expiry tests use real expiries of a few hundred milliseconds and
// bounded waits, because a Redis server keeps its own clock.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/authserver/store"
)

// Timing of the expiry tests. Redis keeps millisecond precision, so an
// entry may vanish up to precision before its expiry; it must never be
// seen live after it.
const (
	shortTTL  = 200 * time.Millisecond
	precision = 2 * time.Millisecond
	maxWait   = 3 * time.Second
	pollEvery = 5 * time.Millisecond
)

// subtestLimit bounds each subtest, Close included. A subtest takes well
// under a second alone and a few seconds under heavy load; one still
// running after subtestLimit is stuck (a lost wakeup, a deadlock in the
// store, a write that never returns), and the watchdog ends the test
// binary with every goroutine's stack instead of letting it sit until
// go test's own timeout.
const subtestLimit = time.Minute

// How many goroutines race for one key, and over how many keys.
const (
	racers    = 50
	raceKeys  = 5
	casRounds = 5
)

// Run runs the suite. open must return a fresh, empty store each time it
// is called; Run closes every store it opens when its subtest ends and
// fails the subtest if Close returns an error.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateThenGet", testCreateThenGet},
		{"CreateOnLiveKeyIsErrExists", testCreateOnLiveKey},
		{"CreateOverExpiredKey", testCreateOverExpired},
		{"CreateWithPastExpiry", testCreatePastExpiry},
		{"ExpiredIsAbsentForEveryOperation", testExpiredIsAbsent},
		{"ZeroExpiryNeverExpires", testZeroExpiry},
		{"ValuesAreCopied", testValuesAreCopied},
		{"TakeIsSingleUse", testTakeSingleUse},
		{"ConcurrentTakeHasOneWinner", testConcurrentTake},
		{"ConcurrentCreateHasOneWinner", testConcurrentCreate},
		{"CompareAndSwap", testCompareAndSwap},
		{"CompareAndSwapUpdatesExpiry", testCASUpdatesExpiry},
		{"CompareAndSwapWithPastExpiry", testCASPastExpiry},
		{"ConcurrentCompareAndSwapHasOneWinner", testConcurrentCAS},
		{"Delete", testDelete},
		{"BinaryValues", testBinaryValues},
		{"KeysWithSeparators", testKeysWithSeparators},
		{"CancelledContext", testCancelledContext},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			watchdog(t, subtestLimit)
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// watchdog panics with all goroutine stacks if t has not finished, its
// cleanups included, within limit. A hang cannot be failed from another
// goroutine (t.FailNow must run on the test's own), so the watchdog ends
// the process the way go test's -timeout does, only sooner and naming the
// stuck subtest. Register it first: cleanups run last-in first-out.
func watchdog(t *testing.T, limit time.Duration) {
	t.Helper()
	name := t.Name()
	timer := time.AfterFunc(limit, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("storetest: %s still running after %v: a store operation or a wait is stuck\n\n%s", name, limit, buf))
	})
	t.Cleanup(func() { timer.Stop() })
}

func testCreateThenGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "code:1", []byte("first"), time.Time{})
	mustGet(t, s, "code:1", []byte("first"))
	if _, err := s.Get(ctx, "code:2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing key: err = %v, want ErrNotFound", err)
	}
}

func testCreateOnLiveKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "k", []byte("original"), time.Now().Add(time.Hour))
	err := s.Create(ctx, "k", []byte("intruder"), time.Time{})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create on a live key: err = %v, want ErrExists", err)
	}
	mustGet(t, s, "k", []byte("original"))

	// The failed Create must not have changed the expiry either: the
	// original short expiry still applies.
	expires := time.Now().Add(shortTTL)
	mustCreate(t, s, "short", []byte("v"), expires)
	if err := s.Create(ctx, "short", []byte("v"), time.Time{}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create on a live key: err = %v, want ErrExists", err)
	}
	waitGone(t, s, "short", expires)
}

func testCreateOverExpired(t *testing.T, s store.Store) {
	expires := time.Now().Add(shortTTL)
	mustCreate(t, s, "state:x", []byte("old"), expires)
	waitGone(t, s, "state:x", expires)
	if err := s.Create(context.Background(), "state:x", []byte("new"), time.Time{}); err != nil {
		t.Fatalf("Create over an expired key: %v", err)
	}
	mustGet(t, s, "state:x", []byte("new"))
}

func testCreatePastExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.Create(ctx, "past", []byte("v"), time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("Create with a past expiry: %v", err)
	}
	if _, err := s.Get(ctx, "past"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Create with a past expiry: err = %v, want ErrNotFound", err)
	}
	mustCreate(t, s, "past", []byte("now live"), time.Time{})

	// A past expiry does not overwrite a live entry either.
	err := s.Create(ctx, "past", []byte("v"), time.Now().Add(-time.Second))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create with a past expiry on a live key: err = %v, want ErrExists", err)
	}
	mustGet(t, s, "past", []byte("now live"))
}

func testExpiredIsAbsent(t *testing.T, s store.Store) {
	ctx := context.Background()
	expires := time.Now().Add(shortTTL)
	for _, k := range []string{"get", "take", "cas", "del"} {
		mustCreate(t, s, k, []byte("v"), expires)
	}
	waitGone(t, s, "get", expires)
	if _, err := s.Take(ctx, "take"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take of an expired key: err = %v, want ErrNotFound", err)
	}
	ok, err := s.CompareAndSwap(ctx, "cas", []byte("v"), []byte("w"), time.Time{})
	if ok || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CompareAndSwap of an expired key = (%v, %v), want (false, ErrNotFound)", ok, err)
	}
	if _, err := s.Get(ctx, "cas"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired key revived by CompareAndSwap: err = %v", err)
	}
	if err := s.Delete(ctx, "del"); err != nil {
		t.Errorf("Delete of an expired key: %v", err)
	}
}

func testZeroExpiry(t *testing.T, s store.Store) {
	expires := time.Now().Add(shortTTL)
	mustCreate(t, s, "forever", []byte("v"), time.Time{})
	mustCreate(t, s, "brief", []byte("v"), expires)
	waitGone(t, s, "brief", expires)
	time.Sleep(shortTTL / 2)
	mustGet(t, s, "forever", []byte("v"))
}

func testValuesAreCopied(t *testing.T, s store.Store) {
	in := []byte("abc")
	mustCreate(t, s, "k", in, time.Time{})
	in[0] = 'X'
	out := mustGet(t, s, "k", []byte("abc"))
	out[0] = 'Y'
	mustGet(t, s, "k", []byte("abc"))
}

func testTakeSingleUse(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "code:once", []byte("grant"), time.Now().Add(time.Hour))
	got, err := s.Take(ctx, "code:once")
	if err != nil || !bytes.Equal(got, []byte("grant")) {
		t.Fatalf("Take = (%q, %v), want (\"grant\", nil)", got, err)
	}
	if _, err := s.Take(ctx, "code:once"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Take: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "code:once"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Take: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Take(ctx, "never"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take of a missing key: err = %v, want ErrNotFound", err)
	}
}

func testConcurrentTake(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range raceKeys {
		key := fmt.Sprintf("code:race%d", i)
		want := []byte(fmt.Sprintf("value %d", i))
		mustCreate(t, s, key, want, time.Now().Add(time.Hour))
		errs := race(func(int) error {
			got, err := s.Take(ctx, key)
			if err == nil && !bytes.Equal(got, want) {
				return fmt.Errorf("Take won with %q, want %q", got, want)
			}
			return err
		})
		checkOneWinner(t, "Take", errs, store.ErrNotFound)
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range raceKeys {
		key := fmt.Sprintf("family:race%d", i)
		errs := race(func(n int) error {
			return s.Create(ctx, key, []byte(fmt.Sprint(n)), time.Now().Add(time.Hour))
		})
		winner := checkOneWinner(t, "Create", errs, store.ErrExists)
		if winner >= 0 {
			mustGet(t, s, key, []byte(fmt.Sprint(winner)))
		}
	}
}

func testCompareAndSwap(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "family:1", []byte("gen1"), time.Time{})

	ok, err := s.CompareAndSwap(ctx, "family:1", []byte("gen1"), []byte("gen2"), time.Time{})
	if !ok || err != nil {
		t.Fatalf("CompareAndSwap with the current value = (%v, %v), want (true, nil)", ok, err)
	}
	mustGet(t, s, "family:1", []byte("gen2"))

	// Stale, prefix, extended and empty olds must all fail to swap.
	for _, old := range []string{"gen1", "gen", "gen22", "GEN2", ""} {
		ok, err := s.CompareAndSwap(ctx, "family:1", []byte(old), []byte("bad"), time.Time{})
		if ok || err != nil {
			t.Errorf("CompareAndSwap with old %q = (%v, %v), want (false, nil)", old, ok, err)
		}
	}
	mustGet(t, s, "family:1", []byte("gen2"))

	ok, err = s.CompareAndSwap(ctx, "family:none", []byte("x"), []byte("y"), time.Time{})
	if ok || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CompareAndSwap of a missing key = (%v, %v), want (false, ErrNotFound)", ok, err)
	}
	if _, err := s.Get(ctx, "family:none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CompareAndSwap created a missing key: err = %v", err)
	}
}

func testCASUpdatesExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()

	// From a short expiry to none: the entry outlives its first expiry.
	first := time.Now().Add(shortTTL)
	mustCreate(t, s, "extend", []byte("a"), first)
	mustCreate(t, s, "marker", []byte("m"), first)
	if ok, err := s.CompareAndSwap(ctx, "extend", []byte("a"), []byte("b"), time.Time{}); !ok || err != nil {
		t.Fatalf("CompareAndSwap = (%v, %v), want (true, nil)", ok, err)
	}
	waitGone(t, s, "marker", first)
	time.Sleep(shortTTL / 4)
	mustGet(t, s, "extend", []byte("b"))

	// From none to a short expiry: the entry now expires.
	mustCreate(t, s, "shorten", []byte("a"), time.Time{})
	expires := time.Now().Add(shortTTL)
	if ok, err := s.CompareAndSwap(ctx, "shorten", []byte("a"), []byte("b"), expires); !ok || err != nil {
		t.Fatalf("CompareAndSwap = (%v, %v), want (true, nil)", ok, err)
	}
	mustGet(t, s, "shorten", []byte("b"))
	waitGone(t, s, "shorten", expires)

	// A failed swap leaves the expiry alone.
	expires = time.Now().Add(shortTTL)
	mustCreate(t, s, "keep", []byte("a"), expires)
	if ok, err := s.CompareAndSwap(ctx, "keep", []byte("z"), []byte("b"), time.Time{}); ok || err != nil {
		t.Fatalf("CompareAndSwap with a wrong old = (%v, %v), want (false, nil)", ok, err)
	}
	waitGone(t, s, "keep", expires)
}

func testCASPastExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "k", []byte("a"), time.Time{})
	ok, err := s.CompareAndSwap(ctx, "k", []byte("a"), []byte("b"), time.Now().Add(-time.Second))
	if !ok || err != nil {
		t.Fatalf("CompareAndSwap with a past expiry = (%v, %v), want (true, nil)", ok, err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after a swap to a past expiry: err = %v, want ErrNotFound", err)
	}
}

// testConcurrentCAS is refresh-token rotation: many requests present the
// same refresh token at once and exactly one may rotate the family.
func testConcurrentCAS(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range raceKeys {
		key := fmt.Sprintf("family:rot%d", i)
		current := []byte("gen0")
		mustCreate(t, s, key, current, time.Now().Add(time.Hour))
		for round := range casRounds {
			old := current
			errs := race(func(n int) error {
				next := []byte(fmt.Sprintf("gen%d-%d", round+1, n))
				ok, err := s.CompareAndSwap(ctx, key, old, next, time.Now().Add(time.Hour))
				if err != nil {
					return err
				}
				if !ok {
					return errLostSwap
				}
				return nil
			})
			winner := checkOneWinner(t, "CompareAndSwap", errs, errLostSwap)
			if winner < 0 {
				return
			}
			current = []byte(fmt.Sprintf("gen%d-%d", round+1, winner))
			mustGet(t, s, key, current)
		}
	}
}

var errLostSwap = errors.New("swap lost")

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "k", []byte("v"), time.Time{})
	mustCreate(t, s, "k:other", []byte("w"), time.Time{})
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	mustGet(t, s, "k:other", []byte("w"))
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	mustCreate(t, s, "k", []byte("again"), time.Time{})
	mustGet(t, s, "k", []byte("again"))
}

func testBinaryValues(t *testing.T, s store.Store) {
	ctx := context.Background()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	values := map[string][]byte{
		"all-bytes": all,
		"empty":     {},
		"nul":       {0},
		"not-utf8":  {0xff, 0xfe, 0xc3, 0x28, '"', '\\', '\n'},
	}
	for name, v := range values {
		mustCreate(t, s, name, v, time.Time{})
		mustGet(t, s, name, v)
	}

	// CompareAndSwap compares binary values byte for byte.
	ok, err := s.CompareAndSwap(ctx, "all-bytes", all, []byte{}, time.Time{})
	if !ok || err != nil {
		t.Fatalf("CompareAndSwap of binary values = (%v, %v), want (true, nil)", ok, err)
	}
	ok, err = s.CompareAndSwap(ctx, "all-bytes", []byte{}, all, time.Time{})
	if !ok || err != nil {
		t.Fatalf("CompareAndSwap from an empty value = (%v, %v), want (true, nil)", ok, err)
	}
	got, err := s.Take(ctx, "all-bytes")
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("Take of binary value = (%x, %v), want all bytes", got, err)
	}
	got, err = s.Take(ctx, "empty")
	if err != nil || len(got) != 0 {
		t.Fatalf("Take of empty value = (%q, %v), want (\"\", nil)", got, err)
	}
}

func testKeysWithSeparators(t *testing.T, s store.Store) {
	keys := []string{"code:abc/def", "a:b:c", "a:b", "a", "/", ":", "key:signing", "x/y/z:1"}
	for _, k := range keys {
		mustCreate(t, s, k, []byte("v="+k), time.Time{})
	}
	for _, k := range keys {
		mustGet(t, s, k, []byte("v="+k))
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	live := context.Background()
	mustCreate(t, s, "k", []byte("v"), time.Time{})
	ctx, cancel := context.WithCancel(live)
	cancel()

	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", op, err)
		}
	}
	check("Create", s.Create(ctx, "new", []byte("v"), time.Time{}))
	_, err := s.Get(ctx, "k")
	check("Get", err)
	_, err = s.Take(ctx, "k")
	check("Take", err)
	_, err = s.CompareAndSwap(ctx, "k", []byte("v"), []byte("w"), time.Time{})
	check("CompareAndSwap", err)
	check("Delete", s.Delete(ctx, "k"))
	check("Ping", s.Ping(ctx))

	mustGet(t, s, "k", []byte("v"))
	if _, err := s.Get(live, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Create with a cancelled context stored the entry: err = %v", err)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping of a fresh store: %v", err)
	}
}

func mustCreate(t *testing.T, s store.Store, key string, value []byte, expires time.Time) {
	t.Helper()
	if err := s.Create(context.Background(), key, value, expires); err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s store.Store, key string, want []byte) []byte {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
	return got
}

// waitGone polls key until it is absent, failing if it vanishes before
// expires (less the store's precision) or is still there well after it.
func waitGone(t *testing.T, s store.Store, key string, expires time.Time) {
	t.Helper()
	deadline := time.Now().Add(maxWait)
	for {
		_, err := s.Get(context.Background(), key)
		answered := time.Now()
		switch {
		case errors.Is(err, store.ErrNotFound):
			// The Get was over by answered, so the entry was gone then.
			if answered.Before(expires.Add(-precision)) {
				t.Fatalf("%q vanished %v before its expiry", key, expires.Sub(answered))
			}
			return
		case err != nil:
			t.Fatalf("Get(%q) while waiting for expiry: %v", key, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q still live %v after its expiry", key, time.Since(expires))
		}
		time.Sleep(pollEvery)
	}
}

// race runs fn in racers goroutines released together and returns each
// one's error, indexed by goroutine number.
func race(fn func(n int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for n := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[n] = fn(n)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// checkOneWinner fails unless exactly one error is nil and all others are
// loser; it returns the winner's index, or -1.
func checkOneWinner(t *testing.T, op string, errs []error, loser error) int {
	t.Helper()
	winner := -1
	wins := 0
	for n, err := range errs {
		switch {
		case err == nil:
			winner = n
			wins++
		case !errors.Is(err, loser):
			t.Errorf("concurrent %s #%d: unexpected error %v", op, n, err)
		}
	}
	if wins != 1 {
		t.Errorf("concurrent %s: %d winners, want exactly 1", op, wins)
		return -1
	}
	return winner
}
