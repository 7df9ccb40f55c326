package check

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/toolgate/toolgate/auth"
)

// explainToken asks the server's verifier for the verdict, then decodes the
// token without trusting it to say which checks fail and why.
func (o Options) explainToken(ctx context.Context, st *issuerState) *TokenReport {
	cfg := o.Config
	keys := auth.NewRemoteKeySet(st.serverJWKS, o.Client)
	if st.serverJWKS != "" && o.Verifier == nil {
		if err := keys.Refresh(ctx); err != nil && st.keysProblem == "" {
			st.keysProblem = err.Error()
		}
	}
	v := o.Verifier
	var err error
	if v == nil {
		v, err = auth.NewJWTVerifier(auth.JWTOptions{
			Issuer:    cfg.AuthorizationServerURL,
			Audiences: cfg.Audiences,
			Keys:      keys,
			Now:       o.Now,
		})
	}
	var p *auth.Principal
	if err == nil {
		p, err = v.Verify(ctx, o.Token)
	}

	e := o.explain(st)
	if cfg.TokenValidator == "introspection" || (cfg.Google || cfg.Introspects) && !auth.IsJWS(o.Token) {
		// Judged by an endpoint, not by the JWT rules explained here.
		e.failures = nil
	}
	tr := &TokenReport{Failures: []Failure{}, Header: e.header, Claims: e.claims}
	var te *auth.TokenError
	switch {
	case err == nil:
		missing := p.Missing(cfg.Required)
		if len(missing) == 0 {
			tr.Accepted = true
			return tr
		}
		// The proxy's own words for this 403.
		tr.Reason = "the token lacks scopes this server requires"
		tr.Failures = append(tr.Failures, scopeFailure(cfg.Required, p.Scopes, missing))
	case errors.As(err, &te):
		tr.Reason = te.Reason
		tr.Failures = append(tr.Failures, e.failures...)
		if len(tr.Failures) == 0 {
			tr.Failures = append(tr.Failures, Failure{Check: "verifier", Expected: "a token toolgate accepts", Actual: te.Reason,
				Fix: "the verifier rejected the token for a reason this report cannot break down further"})
		}
	case errors.Is(err, auth.ErrNotReady):
		// The server would answer 503: it cannot tell yet.
		tr.Reason = err.Error()
		problem := st.keysProblem
		if problem == "" {
			problem = err.Error()
		}
		tr.Failures = append(tr.Failures, Failure{Check: "keys", Expected: "the issuer's signing keys loaded", Actual: problem,
			Fix: "fix the failing setup checks; until the keys load toolgate answers 503 to every token"})
		tr.Failures = append(tr.Failures, e.failures...)
	default:
		// An introspection or tokeninfo endpoint failed: 503 as well.
		tr.Reason = err.Error()
		tr.Failures = append(tr.Failures, Failure{Check: "service", Expected: "the token validation endpoint answering", Actual: err.Error(),
			Fix: "make the endpoint reachable from toolgate with the configured client credentials; until then toolgate answers 503"})
		tr.Failures = append(tr.Failures, e.failures...)
	}
	return tr
}

// explanation is what decoding the token, untrusted, shows.
type explanation struct {
	failures []Failure
	header   *Header
	claims   *Claims
}

// explain runs the verifier's checks in the verifier's order on the decoded
// token and collects every failure rather than the first.
func (o Options) explain(st *issuerState) explanation {
	var e explanation
	fail := func(check, expected, actual, fix string) {
		e.failures = append(e.failures, Failure{Check: check, Expected: expected, Actual: actual, Fix: fix})
	}
	token := o.Token
	if actual := shape(token); actual != "" {
		fix := o.opaqueFix()
		if strings.Count(token, ".") == 4 {
			fix = "the authorization server encrypts its access tokens; turn token encryption off for this API (toolgate verifies signed JWTs)"
		}
		fail("format", "a signed JWT: three base64url segments, header.payload.signature", actual, fix)
		return e
	}
	segs := strings.Split(token, ".")
	var h map[string]any
	if decodeSegment(segs[0], &h) != nil {
		fail("format", "a base64url-encoded JSON header", "the header segment is not base64url JSON", o.opaqueFix())
		return e
	}
	alg, kid, typ := str(h["alg"]), str(h["kid"]), str(h["typ"])
	e.header = &Header{Alg: display(alg), KID: display(kid), Typ: display(typ)}

	// Header, as auth's checkHeader sees it.
	algOK := true
	const asymmetric = "an asymmetric signature algorithm (RS256, PS256, ES256, EdDSA, …)"
	switch {
	case alg == "" || alg == "none":
		algOK = false
		fail("alg", asymmetric, orNone(alg), "the token is unsigned; toolgate never accepts that")
	case strings.HasPrefix(alg, "HS"):
		algOK = false
		fail("alg", asymmetric, display(alg)+" (a shared-secret HMAC)", "make the authorization server sign access tokens with an asymmetric key (Auth0: API → Signing Algorithm RS256)")
	}
	switch strings.ToLower(typ) {
	case "", "jwt", "at+jwt", "application/at+jwt":
	default:
		fail("typ", "at+jwt or JWT (an access token)", display(typ), "this is another kind of JWT; send the access token the authorization server issued for "+o.Config.Audiences[0])
	}
	if crit, ok := h["crit"]; ok {
		algOK = false
		fail("crit", "no crit header", "crit "+display(fmt.Sprint(crit)), "toolgate supports no critical header extensions")
	}

	// Key and signature, against the keys the issuer publishes.
	if st.keys != nil && algOK {
		var key *auth.SigningKey
		var kids []string
		for i := range st.keys {
			if k := st.keys[i].KID; k != "" {
				kids = append(kids, k)
				if k == kid {
					key = &st.keys[i]
				}
			}
		}
		switch {
		case kid == "" && len(st.keys) == 1:
			key = &st.keys[0]
		case kid == "":
			fail("kid", "a kid naming one of "+strings.Join(kids, ", "), "(none)",
				"the issuer publishes several keys, so its tokens must say which one signed them")
		case key == nil:
			fail("kid", "one of the issuer's key ids: "+strings.Join(kids, ", "), display(kid),
				"the token is signed with a key "+st.jwksURL+" does not publish: a token from another issuer or tenant, or from a key since rotated out")
		}
		switch {
		case key == nil:
		case !slices.Contains(key.Algs, alg):
			fail("alg", fmt.Sprintf("%s (what key %s verifies)", strings.Join(key.Algs, " or "), orNone(key.KID)), display(alg),
				"the header's alg does not fit the key it names; this issuer did not make the token")
		default:
			if _, err := jws.Verify([]byte(token), jws.WithKey(jwa.SignatureAlgorithm(alg), key.Public)); err != nil {
				fail("signature", "a valid signature by key "+orNone(key.KID)+" of "+st.jwksURL, "the signature does not verify",
					"the token was changed after signing, or signed by another key under the same kid; get a fresh token from "+o.Config.AuthorizationServerURL)
			}
		}
	}

	var c map[string]any
	if decodeSegment(segs[1], &c) != nil {
		fail("format", "a base64url-encoded JSON claims set", "the payload segment is not base64url JSON", o.opaqueFix())
		return e
	}
	e.claims = o.claims(c, fail)
	return e
}

// claims checks the payload as auth's checkClaims does and returns the
// claims worth showing.
func (o Options) claims(c map[string]any, fail func(check, expected, actual, fix string)) *Claims {
	cfg := o.Config
	now := o.Now()
	skew := auth.MaxSkew
	out := &Claims{Issuer: display(str(c["iss"])), Subject: display(str(c["sub"]))}

	iss := str(c["iss"])
	issuers := []string{cfg.AuthorizationServerURL}
	if cfg.Google {
		issuers = []string{auth.GoogleIssuer, "accounts.google.com"} // Google's ID tokens use both
	}
	if !slices.Contains(issuers, iss) {
		fix := fmt.Sprintf("the token comes from another authorization server or tenant: get one from %s, or point AUTHORIZATION_SERVER_URL at %s if that is your server",
			cfg.AuthorizationServerURL, display(iss))
		switch {
		case iss == "":
			fix = "the authorization server must put its issuer identifier in iss"
		case strings.TrimSuffix(iss, "/") == strings.TrimSuffix(cfg.AuthorizationServerURL, "/"):
			fix = "iss and AUTHORIZATION_SERVER_URL differ only in the trailing slash: set AUTHORIZATION_SERVER_URL=" + display(iss) + " if the issuer check agrees"
		}
		fail("issuer", oneOf(issuers), orNone(display(iss)), fix)
	}

	aud := strList(c["aud"])
	for _, a := range aud {
		out.Audience = append(out.Audience, display(a))
	}
	audiences := cfg.Audiences
	if cfg.Google {
		audiences = cfg.GoogleClients
	}
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(audiences, a) }) {
		actual := orNone(strings.Join(out.Audience, ", "))
		if _, ok := c["aud"]; ok && aud == nil {
			actual = "not a string or list of strings"
		}
		fail("audience", oneOf(audiences), actual, o.audienceFix(out.Audience))
	}

	checkTime := func(name, check string, fn func(t time.Time) (bad bool, expected, actual, fix string)) string {
		v, ok := c[name]
		if !ok {
			return ""
		}
		t, ok := numericDate(v)
		if !ok {
			fail(check, name+" as seconds since the epoch", display(fmt.Sprint(v)), "the authorization server must send "+name+" as a number (RFC 7519 NumericDate)")
			return ""
		}
		if bad, expected, actual, fix := fn(t); bad {
			fail(check, expected, actual, fix)
		}
		return stamp(t)
	}
	if _, ok := c["exp"]; !ok {
		fail("expiry", "an exp claim", "(none)", "the authorization server must set exp; toolgate never accepts a token that does not expire")
	}
	out.Expiry = checkTime("exp", "expiry", func(t time.Time) (bool, string, string, string) {
		return !now.Before(t.Add(skew)),
			fmt.Sprintf("later than %s (now, less %s of clock skew)", stamp(now.Add(-skew)), skew),
			fmt.Sprintf("%s (expired %s ago)", stamp(t), ago(now.Sub(t))),
			"get a fresh token; if it was just issued, check this machine's clock"
	})
	out.NotBefore = checkTime("nbf", "not_before", func(t time.Time) (bool, string, string, string) {
		return now.Add(skew).Before(t),
			fmt.Sprintf("at or before %s (now, plus %s of clock skew)", stamp(now.Add(skew)), skew),
			fmt.Sprintf("%s (%s from now)", stamp(t), ago(t.Sub(now))),
			"the token is not valid yet; check the clocks of this machine and the authorization server"
	})
	out.IssuedAt = checkTime("iat", "issued_at", func(t time.Time) (bool, string, string, string) {
		return now.Add(skew).Before(t),
			fmt.Sprintf("at or before %s (now, plus %s of clock skew)", stamp(now.Add(skew)), skew),
			fmt.Sprintf("%s (%s from now)", stamp(t), ago(t.Sub(now))),
			"the token says it was issued in the future; check the clocks of this machine and the authorization server"
	})

	if str(c["sub"]) == "" {
		fail("subject", "a non-empty sub claim", "(none)", "toolgate names the caller by sub; tokens of the client-credentials grant often have none")
	}

	for _, k := range []string{"client_id", "azp"} {
		if id := str(c[k]); id != "" {
			out.ClientID = display(id)
			break
		}
	}
	var granted []string
	if s, ok := c["scope"]; ok {
		granted = scopeList(s)
	} else if s, ok := c["scp"]; ok {
		granted = scopeList(s)
	}
	for _, s := range granted {
		out.Scopes = append(out.Scopes, display(s))
	}
	var missing []string
	for _, r := range cfg.Required {
		if !slices.Contains(granted, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		f := scopeFailure(cfg.Required, granted, missing)
		fail(f.Check, f.Expected, f.Actual, f.Fix)
	}
	return out
}

func scopeFailure(required, granted, missing []string) Failure {
	shown := make([]string, len(granted))
	for i, s := range granted {
		shown[i] = display(s)
	}
	return Failure{Check: "scope",
		Expected: strings.Join(required, " ") + " (REQUIRED_SCOPES)",
		Actual:   orNone(strings.Join(shown, " ")) + "; missing " + strings.Join(missing, " "),
		Fix:      "have the client request " + strings.Join(missing, " ") + " (toolgate's 403 challenge names them) and allow it that at the authorization server"}
}

// shape says why token is not a compact JWS, or "" when it has that shape.
// It follows auth's checkCompact.
func shape(token string) string {
	clean := true
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c == '.' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			clean = false
			break
		}
	}
	dots := strings.Count(token, ".")
	switch {
	case !clean && strings.HasPrefix(token, "{"):
		return "JSON, not the compact form"
	case !clean:
		return fmt.Sprintf("%d characters, some outside base64url (no spaces, +, / or = padding)", len(token))
	case dots == 0:
		return fmt.Sprintf("an opaque string of %d characters", len(token))
	case dots == 4:
		return "an encrypted JWT (JWE, five segments)"
	case dots != 2:
		return fmt.Sprintf("%d segments", dots+1)
	}
	return ""
}

func (o Options) opaqueFix() string {
	aud := o.Config.Audiences[0]
	switch {
	case isAuth0(o.Config):
		return "Auth0 issues an opaque token when the client requests no audience: make " + aud +
			" an API's Identifier and set it as the tenant's Default Audience, or enable the Resource Parameter Compatibility Profile"
	case isGoogle(o.Config):
		return "Google's access tokens are opaque and meant for Google's APIs; see the google check"
	}
	return "configure the authorization server to issue JWT access tokens for " + aud + " (clients send it as the resource parameter)"
}

func (o Options) audienceFix(actual []string) string {
	want := o.Config.Audiences[0]
	switch {
	case isAuth0(o.Config) && len(actual) > 0 && !slices.ContainsFunc(actual, func(a string) bool { return !strings.HasSuffix(a, "/userinfo") }):
		return "the token is good only for Auth0's userinfo: the client requested no audience; set the tenant's Default Audience to " + want +
			" or enable the Resource Parameter Compatibility Profile"
	case isAuth0(o.Config):
		return "make " + want + " the Identifier of the Auth0 API the client requests (audience or resource), or set TOKEN_AUDIENCE to this server's API Identifier"
	case o.Config.Google:
		return "Google issues tokens for a Google OAuth client, never for this server: list the client in GOOGLE_CLIENT_IDS if it is yours; see the google check"
	case len(actual) == 0:
		return "the authorization server must put " + want + " in aud (clients request it as the resource parameter)"
	}
	return "the client must request resource=" + want + " and the authorization server must put it in aud; if " +
		strings.Join(actual, ", ") + " is this server's own API identifier, add it to TOKEN_AUDIENCE"
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// strList reads a string-or-array claim such as aud.
func strList(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

// scopeList reads scope (space-delimited) or scp (array), as auth does.
func scopeList(v any) []string {
	switch s := v.(type) {
	case string:
		return strings.Fields(s)
	case []any:
		var out []string
		for _, e := range s {
			if str, ok := e.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e15 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func ago(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d >= time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

// display makes a value from the token safe to print: printable, and short
// enough that a stuffed claim cannot flood the terminal.
func display(s string) string {
	const max = 200
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
