package proxy

import (
	"net/http"
	"sync"
	"time"
)

// sessions binds each Mcp-Session-Id the upstream hands out to the caller
// that opened it, so a session id alone is never a credential: a request
// that presents another caller's session id is answered 404, as for an
// ended session, and the client starts a new one. A session opened
// anonymously (per-tool mode) is bound to the first signed-in caller that
// uses it, once. Sessions toolgate never saw opened (another replica,
// before a restart) are not bound and pass: the binding lives in memory.
type sessions struct {
	mu   sync.Mutex
	max  int
	ttl  time.Duration
	byID map[string]*binding
	now  func() time.Time
}

type binding struct {
	sub  string // "" while anonymous
	seen time.Time
}

func newSessions(max int, ttl time.Duration) *sessions {
	return &sessions{max: max, ttl: ttl, byID: make(map[string]*binding), now: time.Now}
}

// admit reports whether the caller sub ("" for anonymous) may use session
// id, binding an anonymous session to its first signed-in user.
func (s *sessions) admit(id, sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byID[id]
	now := s.now()
	if !ok || now.Sub(b.seen) > s.ttl {
		return true
	}
	switch {
	case b.sub == sub:
	case b.sub == "" && sub != "":
		b.sub = sub
	default:
		return false
	}
	b.seen = now
	return true
}

// open records a session the upstream just created for sub.
func (s *sessions) open(id, sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.byID) >= s.max {
		for k, b := range s.byID {
			if now.Sub(b.seen) > s.ttl {
				delete(s.byID, k)
			}
		}
		// Still full: forget arbitrary ones (map order is random). A
		// forgotten session is merely unbound, never refused.
		for k := range s.byID {
			if len(s.byID) < s.max-s.max/10 {
				break
			}
			delete(s.byID, k)
		}
	}
	s.byID[id] = &binding{sub: sub, seen: now}
}

func (s *sessions) close(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

// trackSession updates the bindings from an upstream response: a new
// session id opens a binding; a successful DELETE closes one.
func (g *Gateway) trackSession(resp *http.Response, sub string) {
	req := resp.Request
	sent := req.Header.Get("Mcp-Session-Id")
	switch {
	case req.Method == http.MethodDelete && sent != "" && resp.StatusCode < 300:
		g.sessions.close(sent)
	case sent == "":
		if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
			g.sessions.open(id, sub)
		}
	}
}
