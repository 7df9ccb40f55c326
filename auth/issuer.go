package auth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/toolgate/toolgate/discovery"
)

// Issuer keeps what toolgate knows about the external authorization server
// current: its metadata (found by discovery) and its signing keys. Run loads
// both, retrying with backoff while the issuer is unreachable, then refreshes
// the keys periodically. Readiness reflects that state.
type Issuer struct {
	URL             string        // AUTHORIZATION_SERVER_URL, byte for byte
	JWKSURL         string        // optional override of the discovered jwks_uri
	Client          *http.Client  // used for discovery and JWKS
	RefreshInterval time.Duration // periodic JWKS refresh
	Log             *zap.Logger
	Keys            *RemoteKeySet

	// Backoff bounds for the start-up retries; zero means 1s and 1m.
	MinBackoff, MaxBackoff time.Duration

	// SkipDiscovery loads the keys from JWKSURL without reading the
	// issuer's metadata (Google: its key URL is fixed and documented).
	SkipDiscovery bool
	// MetadataOnly reads the metadata and no keys (tokens are introspected,
	// so the issuer need not publish a JWKS). Ready then means metadata.
	MetadataOnly bool

	metadata atomic.Pointer[discovery.ServerMetadata]
	mu       sync.Mutex
	lastErr  error
}

// NewIssuer returns an Issuer whose Keys are ready to hand to a verifier.
func NewIssuer(url, jwksURL string, client *http.Client, refresh time.Duration, log *zap.Logger) *Issuer {
	return &Issuer{
		URL: url, JWKSURL: jwksURL, Client: client, RefreshInterval: refresh, Log: log,
		Keys: NewRemoteKeySet(jwksURL, client),
	}
}

// Metadata is the discovered document, or nil before discovery succeeds (or
// when JWKS_URL made discovery optional and it failed).
func (i *Issuer) Metadata() *discovery.ServerMetadata { return i.metadata.Load() }

// Ready returns nil once keys are loaded (metadata, with MetadataOnly), else
// what is still failing.
func (i *Issuer) Ready() error {
	if i.loaded() {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.lastErr != nil {
		return i.lastErr
	}
	return ErrNotReady
}

// Run loads metadata and keys, then refreshes keys until ctx ends.
func (i *Issuer) Run(ctx context.Context) {
	minB, maxB := i.MinBackoff, i.MaxBackoff
	if minB <= 0 {
		minB = time.Second
	}
	if maxB <= 0 {
		maxB = time.Minute
	}
	backoff := minB
	var lastMsg string
	for {
		err := i.load(ctx)
		if err == nil {
			if i.MetadataOnly {
				i.Log.Info("authorization server metadata loaded", zap.String("issuer", i.URL))
				return // no keys to refresh
			}
			i.Log.Info("authorization server ready", zap.String("issuer", i.URL), zap.String("jwks_uri", i.jwksURL()))
			break
		}
		i.mu.Lock()
		i.lastErr = err
		i.mu.Unlock()
		// One clear line per distinct failure; repeats go to debug so an
		// outage does not flood the log.
		if msg := err.Error(); msg != lastMsg {
			i.Log.Error("authorization server not reachable yet; retrying with backoff", zap.String("issuer", i.URL), zap.Error(err))
			lastMsg = msg
		} else {
			i.Log.Debug("authorization server still not reachable", zap.Error(err), zap.Duration("retry_in", backoff))
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, maxB)
	}

	t := time.NewTicker(i.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			if err := i.Keys.Refresh(rctx); err != nil {
				i.Log.Warn("JWKS refresh failed; cached keys keep serving", zap.Error(err))
			}
			cancel()
		}
	}
}

func (i *Issuer) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if i.SkipDiscovery {
		return i.Keys.Refresh(ctx)
	}
	md, err := discovery.FetchServerMetadata(ctx, i.Client, i.URL)
	switch {
	case err == nil:
		i.metadata.Store(md)
		if i.MetadataOnly {
			return nil
		}
		if i.JWKSURL == "" {
			if md.JWKSURI == "" {
				return errors.New("issuer metadata has no jwks_uri; set JWKS_URL")
			}
			i.Keys.SetURL(md.JWKSURI)
		}
	case i.JWKSURL == "" || i.MetadataOnly:
		return err
	default:
		// With JWKS_URL set, keys are enough to verify tokens; metadata
		// only feeds checks, so its absence is worth a warning, not an outage.
		i.Log.Warn("issuer metadata not found; verifying with JWKS_URL alone", zap.Error(err))
	}
	return i.Keys.Refresh(ctx)
}

func (i *Issuer) loaded() bool {
	if i.MetadataOnly {
		return i.Metadata() != nil
	}
	return i.Keys.Loaded()
}

func (i *Issuer) jwksURL() string {
	i.Keys.mu.Lock()
	defer i.Keys.mu.Unlock()
	return i.Keys.url
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
