package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
)

// maxResponseBytes bounds an introspection or tokeninfo answer; real ones
// are well under 4 KiB.
const maxResponseBytes = 64 << 10

// numeric reads a JSON number, or a string holding one: RFC 7662 sends
// numbers, Google's tokeninfo sends strings ("exp": "1700000000").
type numeric struct {
	v   int64
	set bool
}

func (n *numeric) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		n.v, n.set = i, true
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64 || f < math.MinInt64 {
		return errors.New("not a number")
	}
	n.v, n.set = int64(f), true
	return nil
}

func (n numeric) time() time.Time { return time.Unix(n.v, 0) }

// Audience reads a JWT or introspection "aud": one string or an array of
// strings (RFC 7519 §4.1.3). The embedded authorization server reads
// client assertions with it too.
type Audience []string

func (a *Audience) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*a = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = list
	return nil
}

// flag reads a JSON boolean or the strings "true" and "false", as Google's
// tokeninfo writes email_verified.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", `"true"`:
		*f = true
	case "false", `"false"`, "null":
		*f = false
	default:
		return errors.New("not a boolean")
	}
	return nil
}

// noRedirect keeps the token where it was sent: a validation endpoint that
// redirects is answered as unavailable rather than followed, since
// following a POST redirect would send the token to another URL.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// withoutRedirects returns a copy of c (or of the default client) that
// never follows redirects.
func withoutRedirects(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	cp := *c
	cp.CheckRedirect = noRedirect
	return &cp
}

// callDeadline bounds one call to a validation endpoint. It is detached from
// the caller's cancellation because concurrent requests with the same token
// share the call; the timeout still bounds it.
func callDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// readBounded reads at most maxResponseBytes of a response body.
func readBounded(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	return body, nil
}

// unavailable wraps ErrUnavailable with what failed. Its message never holds
// the token: callers pass the endpoint and a status or transport error only.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}
