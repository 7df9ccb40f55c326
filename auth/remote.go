package auth

import (
	"crypto/sha256"
	"errors"
	"time"

	"golang.org/x/sync/singleflight"
)

// Bounds on the calls clients can make toolgate place with a remote
// token-validation service (RFC 7662 introspection, Google tokeninfo).
// Without them every request with a made-up token costs one outbound call
// under toolgate's own credentials, and a flood could get toolgate's client
// rate-limited at the authorization server: an outage for every user.
const (
	// maxRemoteInFlight calls run at once; more get ErrUnavailable at
	// once rather than queueing behind a slow service.
	maxRemoteInFlight = 64
	// rejectTTL is how long a rejection is remembered, so repeating a bad
	// token costs nothing.
	rejectTTL = 30 * time.Second
)

// remoteChecks remembers a remote service's verdicts by the SHA-256 of the
// token and limits the calls: one per distinct token at a time, at most
// maxRemoteInFlight at once.
type remoteChecks struct {
	accepted *tokenCache
	rejected *tokenCache
	slots    chan struct{}
	flight   singleflight.Group
	now      func() time.Time
}

func newRemoteChecks(cacheSize int, now func() time.Time) *remoteChecks {
	return &remoteChecks{
		accepted: newTokenCache(cacheSize),
		rejected: newTokenCache(cacheSize),
		slots:    make(chan struct{}, maxRemoteInFlight),
		now:      now,
	}
}

var errBusy = unavailable("too many token checks in flight at the validation service; retry shortly")

// verdict returns the remembered verdict on token, or asks call, which
// returns the principal and until when its answer may be reused. A
// *TokenError is remembered for rejectTTL; failures of the service are not
// remembered at all.
func (r *remoteChecks) verdict(token string, call func() (*Principal, time.Time, error)) (*Principal, error) {
	key := sha256.Sum256([]byte(token))
	now := r.now()
	if e, ok := r.accepted.get(key, now); ok {
		return e.p, nil
	}
	if e, ok := r.rejected.get(key, now); ok {
		return nil, e.err
	}
	res, err, _ := r.flight.Do(string(key[:]), func() (any, error) {
		select {
		case r.slots <- struct{}{}:
			defer func() { <-r.slots }()
		default:
			return nil, errBusy
		}
		p, until, err := call()
		now := r.now()
		var te *TokenError
		switch {
		case errors.As(err, &te):
			r.rejected.put(key, cacheEntry{err: err, until: now.Add(rejectTTL)}, now)
		case err == nil:
			r.accepted.put(key, cacheEntry{p: p, until: until}, now)
		}
		return p, err
	})
	if err != nil {
		return nil, err
	}
	return res.(*Principal), nil
}
