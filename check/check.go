// Package check is toolgate's preflight, "toolgate check". With the server's
// configuration it fetches what MCP clients and toolgate fetch (the issuer's
// metadata and signing keys), reports what clients need and may stumble on,
// and explains why toolgate would accept or reject a given token.
//
// The verdict on a token always comes from the verifier the server uses;
// this package only decodes the token, without trusting it, to explain that
// verdict. It serves nothing, and never prints, logs or returns a token or
// its signature.
package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/discovery"
)

// Options is what a run checks.
type Options struct {
	Config *config.Config
	// Advertised is the scopes_supported of toolgate's protected-resource
	// metadata; nil means Config.Supported.
	Advertised []string
	// Token is explained when not empty.
	Token  string
	Client *http.Client // for the issuer's metadata and keys
	Now    func() time.Time
	// Verifier gives the verdict on Token: the verifier the server builds,
	// loaded as the server loads it. nil means a JWT verifier for the
	// configured issuer and audiences over the keys this run fetches.
	Verifier auth.Verifier
}

// goGetPrefix is what *url.Error adds to a message that names the URL already.
var goGetPrefix = regexp.MustCompile(`(Get|GET) "[^"]*": `)

// maxJWKSBytes bounds the key set read for the report, as auth does.
const maxJWKSBytes = 1 << 20

// Run checks the setup and, when o.Token is set, the token. Every problem is
// in the report; Run itself never fails.
func Run(ctx context.Context, o Options) *Report {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Advertised == nil {
		o.Advertised = o.Config.Supported
	}
	cfg := o.Config
	r := &Report{Checks: []Check{{Name: "config", Status: OK, Detail: "configuration is valid"}}}
	r.add(resourceCheck(cfg))
	r.add(audienceCheck(cfg))
	r.add(prmCheck(cfg, o.Advertised))
	st := o.issuer(ctx, r)
	r.add(scopesCheck(cfg, o.Advertised, st.md))
	if c, ok := providerCheck(cfg); ok {
		r.add(c)
	}
	if o.Token != "" {
		r.Token = o.explainToken(ctx, st)
	}
	return r
}

// issuerState is what the run learnt about the authorization server.
type issuerState struct {
	md       *discovery.ServerMetadata // nil when not found; may name another issuer
	issuerOK bool                      // md.Issuer is AUTHORIZATION_SERVER_URL
	jwksURL  string                    // the key set the report describes
	keys     []auth.SigningKey         // its usable keys; nil when it could not be read
	// serverJWKS is where the server would load keys from, "" when it
	// would load none; keysProblem says why it would have none.
	serverJWKS  string
	keysProblem string
}

func (o Options) issuer(ctx context.Context, r *Report) *issuerState {
	cfg := o.Config
	st := &issuerState{}
	md, err := discovery.FetchServerMetadata(ctx, o.Client, cfg.AuthorizationServerURL)
	var mm *discovery.IssuerMismatchError
	switch {
	case err == nil:
		st.md, st.issuerOK = md, true
		r.add(Check{Name: "metadata", Status: OK, Detail: "found at " + md.Source + " (" + metadataKind(md.Source) + ")"})
		detail := fmt.Sprintf("%s, identical to AUTHORIZATION_SERVER_URL and the PRM entry", md.Issuer)
		if cfg.Embedded {
			detail = fmt.Sprintf("%s: toolgate's own authorization server (AUTHORIZATION_SERVER_URL is empty), as the PRM names it", md.Issuer)
		}
		r.add(Check{Name: "issuer", Status: OK, Detail: detail})
	case errors.As(err, &mm):
		r.add(Check{Name: "metadata", Status: OK, Detail: "found at " + mm.URL + " (" + metadataKind(mm.URL) + ")"})
		r.add(issuerMismatch(mm))
		// Read the same document under its own issuer, so the other
		// checks still say what clients would find in it.
		if other, err := discovery.FetchServerMetadata(ctx, o.Client, mm.Got); err == nil && other.Source == mm.URL {
			st.md = other
		}
	default:
		urls, _ := discovery.MetadataURLs(cfg.AuthorizationServerURL)
		r.add(Check{Name: "metadata", Status: Fail, Detail: goGetPrefix.ReplaceAllString(err.Error(), ""),
			Fix: "check that AUTHORIZATION_SERVER_URL is the issuer identifier and reachable; MCP clients read its metadata only from " + strings.Join(urls, " or ")})
	}
	if st.md != nil {
		r.add(endpointsCheck(st.md))
		r.add(pkceCheck(st.md))
		r.add(registrationCheck(st.md))
	}
	if cfg.Introspects || cfg.TokenValidator == "introspection" {
		r.add(introspectionCheck(cfg, st.md))
	}

	switch {
	case cfg.TokenValidator == "introspection":
		r.add(Check{Name: "jwks", Status: OK, Detail: "not used: TOKEN_VALIDATOR=introspection sends every token to the introspection endpoint"})
		r.add(httpsCheck(cfg, st.md, ""))
		return st
	case cfg.JWKSURL != "":
		st.jwksURL, st.serverJWKS = cfg.JWKSURL, cfg.JWKSURL
	case cfg.Google:
		// toolgate reads Google's keys from their documented URL.
		st.jwksURL, st.serverJWKS = auth.GoogleJWKSURL, auth.GoogleJWKSURL
	case st.md == nil:
		st.keysProblem = "the issuer's metadata was not found and JWKS_URL is not set"
		r.add(Check{Name: "jwks", Status: Fail, Detail: "no key set URL: " + st.keysProblem,
			Fix: "fix the metadata check, or set JWKS_URL to the issuer's key set"})
	case st.md.JWKSURI == "":
		st.keysProblem = "the issuer's metadata has no jwks_uri and JWKS_URL is not set"
		r.add(Check{Name: "jwks", Status: Fail, Detail: st.keysProblem, Fix: "set JWKS_URL to the issuer's key set URL"})
	default:
		st.jwksURL = st.md.JWKSURI
		if st.issuerOK {
			st.serverJWKS = st.jwksURL
		} else {
			st.keysProblem = "toolgate loads no keys while the metadata names another issuer (see the issuer check)"
		}
	}
	r.add(httpsCheck(cfg, st.md, st.jwksURL))
	if st.jwksURL != "" {
		r.add(o.jwksCheck(ctx, st))
	}
	return st
}

func metadataKind(source string) string {
	if strings.Contains(source, "/.well-known/oauth-authorization-server") {
		return "RFC 8414"
	}
	return "OpenID Connect discovery"
}

func issuerMismatch(mm *discovery.IssuerMismatchError) Check {
	c := Check{Name: "issuer", Status: Fail,
		Detail: fmt.Sprintf("metadata says issuer %q; AUTHORIZATION_SERVER_URL (and the PRM entry) is %q; clients discard the document", mm.Got, mm.Want)}
	if strings.TrimSuffix(mm.Got, "/") == strings.TrimSuffix(mm.Want, "/") {
		c.Fix = fmt.Sprintf("they differ only in the trailing slash: set AUTHORIZATION_SERVER_URL=%s", mm.Got)
	} else {
		c.Fix = fmt.Sprintf("set AUTHORIZATION_SERVER_URL to the issuer exactly as the metadata spells it (%s), or point it at the right server", mm.Got)
	}
	return c
}

func introspectionCheck(cfg *config.Config, md *discovery.ServerMetadata) Check {
	switch {
	case cfg.IntrospectionURL != "":
		return Check{Name: "introspection", Status: OK, Detail: "opaque tokens are introspected at " + cfg.IntrospectionURL + " (INTROSPECTION_URL)"}
	case md != nil && md.IntrospectionEndpoint != "":
		return Check{Name: "introspection", Status: OK, Detail: "opaque tokens are introspected at " + md.IntrospectionEndpoint + " (metadata)"}
	}
	return Check{Name: "introspection", Status: Fail, Detail: "no introspection endpoint: INTROSPECTION_URL is unset and the metadata has no introspection_endpoint",
		Fix: "set INTROSPECTION_URL to the authorization server's RFC 7662 endpoint"}
}

func resourceCheck(cfg *config.Config) Check {
	u := cfg.Resource
	if u.Path == "/" {
		return Check{Name: "resource", Status: Warn,
			Detail: cfg.ResourceServerURL + " ends in a slash; MCP's canonical server URI has none and clients compare it byte for byte",
			Fix:    "set RESOURCE_SERVER_URL=" + strings.TrimSuffix(cfg.ResourceServerURL, "/") + " and give clients that URL"}
	}
	c := Check{Name: "resource", Status: OK, Detail: cfg.ResourceServerURL + " is canonical"}
	if u.Scheme == "http" {
		c.Detail += " (http: reachable from this machine only)"
	}
	return c
}

func audienceCheck(cfg *config.Config) Check {
	if slices.Contains(cfg.Audiences, cfg.ResourceServerURL) {
		return Check{Name: "audience", Status: OK, Detail: "tokens must carry aud " + oneOf(cfg.Audiences)}
	}
	return Check{Name: "audience", Status: Warn,
		Detail: fmt.Sprintf("TOKEN_AUDIENCE (%s) leaves out RESOURCE_SERVER_URL; MCP clients request tokens for %s (RFC 8707 resource), which toolgate would reject",
			strings.Join(cfg.Audiences, ", "), cfg.ResourceServerURL),
		Fix: "add " + cfg.ResourceServerURL + " to TOKEN_AUDIENCE, or make it the API identifier at the authorization server"}
}

func prmCheck(cfg *config.Config, advertised []string) Check {
	d := fmt.Sprintf("clients fetch %s (authorization_servers [%s]", discovery.MetadataURL(cfg.Resource), cfg.AuthorizationServerURL)
	if len(advertised) > 0 {
		d += ", scopes_supported [" + strings.Join(advertised, " ") + "]"
	}
	return Check{Name: "prm", Status: OK, Detail: d + ")"}
}

func endpointsCheck(md *discovery.ServerMetadata) Check {
	var missing []string
	if md.AuthorizationEndpoint == "" {
		missing = append(missing, "authorization_endpoint")
	}
	if md.TokenEndpoint == "" {
		missing = append(missing, "token_endpoint")
	}
	if len(missing) > 0 {
		return Check{Name: "endpoints", Status: Fail, Detail: "metadata lacks " + strings.Join(missing, " and "),
			Fix: "the authorization server must publish authorization_endpoint and token_endpoint; clients cannot sign in without them"}
	}
	return Check{Name: "endpoints", Status: OK, Detail: "authorization_endpoint and token_endpoint published"}
}

func pkceCheck(md *discovery.ServerMetadata) Check {
	methods := md.CodeChallengeMethodsSupported
	if slices.Contains(methods, "S256") {
		return Check{Name: "pkce", Status: OK, Detail: "code_challenge_methods_supported includes S256"}
	}
	c := Check{Name: "pkce", Status: Fail,
		Fix: `enable PKCE at the authorization server so its metadata lists code_challenge_methods_supported: ["S256"]`}
	if len(methods) == 0 {
		c.Detail = "metadata has no code_challenge_methods_supported; MCP clients refuse an authorization server that does not advertise S256"
	} else {
		c.Detail = fmt.Sprintf("code_challenge_methods_supported is [%s], without S256; MCP clients refuse to continue", strings.Join(methods, " "))
	}
	return c
}

func registrationCheck(md *discovery.ServerMetadata) Check {
	dcr, cimd := md.RegistrationEndpoint, md.ClientIDMetadataDocumentSupported
	switch {
	case cimd && dcr != "":
		return Check{Name: "registration", Status: OK, Detail: "client ID metadata documents supported; dynamic registration at " + dcr}
	case cimd:
		return Check{Name: "registration", Status: OK, Detail: "client ID metadata documents supported"}
	case dcr != "":
		return Check{Name: "registration", Status: OK, Detail: "dynamic client registration at " + dcr}
	}
	return Check{Name: "registration", Status: Warn,
		Detail: "no registration_endpoint and no client_id_metadata_document_supported: clients need a client registered in advance",
		Fix:    "enable dynamic client registration (RFC 7591) or client ID metadata documents at the authorization server, or pre-register a client and enter it in each MCP client"}
}

func httpsCheck(cfg *config.Config, md *discovery.ServerMetadata, jwksURL string) Check {
	named := [][2]string{
		{"RESOURCE_SERVER_URL", cfg.ResourceServerURL},
		{"issuer", cfg.AuthorizationServerURL},
	}
	if md != nil {
		named = append(named,
			[2]string{"authorization_endpoint", md.AuthorizationEndpoint},
			[2]string{"token_endpoint", md.TokenEndpoint},
			[2]string{"registration_endpoint", md.RegistrationEndpoint})
	}
	named = append(named, [2]string{"jwks", jwksURL})
	var bad []string
	loopback := false
	for _, n := range named {
		if n[1] == "" {
			continue
		}
		u, err := url.Parse(n[1])
		switch {
		case err == nil && u.Scheme == "https":
		case err == nil && u.Scheme == "http" && config.IsLoopback(u.Hostname()):
			loopback = true
		default:
			bad = append(bad, n[0]+" "+n[1])
		}
	}
	if len(bad) > 0 {
		return Check{Name: "https", Status: Fail, Detail: "not https: " + strings.Join(bad, ", "),
			Fix: "serve every authorization-server URL over https; clients refuse plain http except on loopback"}
	}
	if loopback {
		return Check{Name: "https", Status: OK, Detail: "https, or http on loopback only (local development)"}
	}
	return Check{Name: "https", Status: OK, Detail: "every URL uses https"}
}

// jwksCheck reads the key set the way auth does and describes it; it also
// records the usable keys so a token can be explained against them.
func (o Options) jwksCheck(ctx context.Context, st *issuerState) Check {
	fail := func(detail string) Check {
		if st.serverJWKS == st.jwksURL && st.keysProblem == "" {
			st.keysProblem = detail
		}
		return Check{Name: "jwks", Status: Fail, Detail: detail,
			Fix: "make the key set reachable from toolgate with at least one RSA (2048 bits or more), EC or Ed25519 signature key, or set JWKS_URL"}
	}
	body, err := discovery.GetDocument(ctx, o.Client, st.jwksURL, maxJWKSBytes)
	if err != nil {
		return fail(err.Error())
	}
	keys, ignored, err := auth.DescribeKeySet(body)
	if err != nil {
		return fail(fmt.Sprintf("%s: %v", st.jwksURL, err))
	}
	var skipped []string
	for _, k := range ignored {
		skipped = append(skipped, fmt.Sprintf("%s (%s)", orNone(k.KID), k.Reason))
	}
	if len(keys) == 0 {
		return fail(fmt.Sprintf("%s has no usable signature key; ignored: %s", st.jwksURL, strings.Join(skipped, ", ")))
	}
	st.keys = keys
	var names []string
	for _, k := range keys {
		names = append(names, orNone(k.KID)+" "+keyKind(k))
	}
	d := fmt.Sprintf("%s: %d usable signature %s (%s)", st.jwksURL, len(keys), plural(len(keys), "key", "keys"), strings.Join(names, ", "))
	if len(skipped) > 0 {
		d += "; ignored: " + strings.Join(skipped, ", ")
	}
	return Check{Name: "jwks", Status: OK, Detail: d}
}

func keyKind(k auth.SigningKey) string {
	if len(k.Algs) == 1 {
		return k.Algs[0]
	}
	switch k.Public.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return strings.Join(k.Algs, "/")
}

func scopesCheck(cfg *config.Config, advertised []string, md *discovery.ServerMetadata) Check {
	c := Check{Name: "scopes", Status: OK}
	var details, fixes []string
	if slices.Contains(advertised, "offline_access") || slices.Contains(cfg.Required, "offline_access") {
		c.Status = Warn
		details = append(details, "toolgate advertises offline_access, which MCP says scopes_supported should not list")
		fixes = append(fixes, "remove offline_access from SCOPES_SUPPORTED and REQUIRED_SCOPES (clients ask for refresh tokens themselves)")
	}
	switch {
	case md == nil:
	case len(md.ScopesSupported) == 0:
		if len(cfg.Required) > 0 {
			details = append(details, "the authorization server publishes no scopes_supported to compare REQUIRED_SCOPES with")
		}
	default:
		unlisted := func(scopes []string) []string {
			var out []string
			for _, s := range scopes {
				if !slices.Contains(md.ScopesSupported, s) && !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
			return out
		}
		req := unlisted(cfg.Required)
		var adv []string
		for _, s := range unlisted(advertised) {
			if !slices.Contains(req, s) && s != "offline_access" {
				adv = append(adv, s)
			}
		}
		switch {
		case len(req)+len(adv) == 0:
		case isAuth0(cfg):
			// Auth0 lists only OpenID scopes; an API's permissions never appear.
			details = append(details, fmt.Sprintf("Auth0's metadata lists only OpenID scopes; define %s as permissions of the API", strings.Join(append(req, adv...), " ")))
		default:
			c.Status = Warn
			if len(req) > 0 {
				details = append(details, fmt.Sprintf("REQUIRED_SCOPES %s not in the authorization server's scopes_supported, so tokens may never carry them", strings.Join(req, " ")))
				fixes = append(fixes, "define "+strings.Join(req, " ")+" at the authorization server, or drop them from REQUIRED_SCOPES")
			}
			if len(adv) > 0 {
				details = append(details, fmt.Sprintf("toolgate advertises %s, which the authorization server does not list; clients asking for them may get invalid_scope", strings.Join(adv, " ")))
				fixes = append(fixes, "define "+strings.Join(adv, " ")+" at the authorization server, or remove them from SCOPES_SUPPORTED or the tool policy")
			}
		}
	}
	if len(details) == 0 {
		switch {
		case len(cfg.Required) == 0 && len(advertised) == 0:
			details = append(details, "toolgate requires and advertises no scopes")
		case len(cfg.Required) == 0:
			details = append(details, "toolgate advertises "+strings.Join(advertised, " ")+" and requires none on every request")
		default:
			details = append(details, "every request needs "+strings.Join(cfg.Required, " "))
		}
	}
	c.Detail = strings.Join(details, "; ")
	c.Fix = strings.Join(fixes, "; ")
	return c
}

func isAuth0(cfg *config.Config) bool {
	return strings.HasSuffix(strings.ToLower(cfg.Issuer.Hostname()), ".auth0.com")
}

func isGoogle(cfg *config.Config) bool {
	return strings.EqualFold(cfg.Issuer.Hostname(), "accounts.google.com")
}

// providerCheck adds what toolgate knows about the issuer's product and
// cannot see from its metadata.
func providerCheck(cfg *config.Config) (Check, bool) {
	switch {
	case isAuth0(cfg):
		if !strings.HasSuffix(cfg.AuthorizationServerURL, "/") {
			return Check{Name: "auth0", Status: Fail,
				Detail: "Auth0 issuers end in a slash and tokens carry it in iss",
				Fix:    "set AUTHORIZATION_SERVER_URL=" + cfg.AuthorizationServerURL + "/"}, true
		}
		return Check{Name: "auth0", Status: OK,
			Detail: fmt.Sprintf("make the API Identifier %s, and set it as Default Audience or enable the Resource Parameter Compatibility Profile (else clients get opaque tokens); turn on Dynamic Client Registration", cfg.Audiences[0])}, true
	case isGoogle(cfg):
		return Check{Name: "google", Status: Warn,
			Detail: "Google cannot bind tokens to " + cfg.ResourceServerURL + ": its tokens name your Google OAuth client (GOOGLE_CLIENT_IDS), never this resource, and it offers MCP clients no registration, so ChatGPT and Claude cannot sign in with Google directly",
			Fix:    "put toolgate's embedded authorization server (planned) in front, with Google as its sign-in; MCP clients then get tokens for this resource"}, true
	}
	return Check{}, false
}

func oneOf(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return "one of " + strings.Join(values, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
