package check

// Status is the outcome of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // works for toolgate, but some clients or setups will stumble
	Fail Status = "fail" // clients or toolgate cannot work like this
)

// Check is one line of the setup report. Fix says what to change and is
// empty when Status is OK.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// Report is everything one run of toolgate check found. The JSON field names
// are a public contract: scripts read them.
type Report struct {
	Checks []Check      `json:"checks"`
	Token  *TokenReport `json:"token"` // nil when no token was given

	configInvalid bool
}

// TokenReport says whether toolgate would accept a token and, when not,
// every check it fails. Accepted comes from the verifier the server uses;
// Failures, Header and Claims come from decoding the token without trusting
// it, which is what makes them able to explain a rejection.
type TokenReport struct {
	Accepted bool `json:"accepted"`
	// Reason is the verifier's own reason, as the server would put it in
	// its error_description.
	Reason   string    `json:"reason,omitempty"`
	Failures []Failure `json:"failures"`
	Header   *Header   `json:"header,omitempty"`
	Claims   *Claims   `json:"claims,omitempty"`
}

// Failure is one check a token fails, with what toolgate expects and what
// the token carries.
type Failure struct {
	Check    string `json:"check"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	Fix      string `json:"fix"`
}

// Header is the part of a token's JOSE header that decides which key
// verifies it.
type Header struct {
	Alg string `json:"alg,omitempty"`
	KID string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// Claims are the token claims toolgate looks at, as the token states them.
// Times are RFC 3339 in UTC.
type Claims struct {
	Issuer    string   `json:"iss,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	Expiry    string   `json:"exp,omitempty"`
	NotBefore string   `json:"nbf,omitempty"`
	IssuedAt  string   `json:"iat,omitempty"`
	Scopes    []string `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"` // client_id, or Auth0's azp
}

// ConfigReport is the report for a configuration that does not load: one
// failed "config" check per problem, nothing fetched.
func ConfigReport(problems []string) *Report {
	r := &Report{Checks: []Check{}, configInvalid: true}
	for _, p := range problems {
		r.Checks = append(r.Checks, Check{Name: "config", Status: Fail, Detail: p})
	}
	return r
}

// Count returns how many checks have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// ExitCode is the process status the report calls for: 2 when the
// configuration is invalid, 1 when a check failed or the token would be
// rejected, else 0. Warnings alone do not fail a run.
func (r *Report) ExitCode() int {
	switch {
	case r.configInvalid:
		return 2
	case r.Count(Fail) > 0, r.Token != nil && !r.Token.Accepted:
		return 1
	}
	return 0
}

func (r *Report) add(c Check) { r.Checks = append(r.Checks, c) }
