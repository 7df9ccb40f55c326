package authserver

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/toolgate/toolgate/authserver/clientmeta"
)

//go:embed pages.html
var pagesHTML string

// pages holds the login, consent and error pages. html/template escapes
// every value, including the untrusted client names.
var pages = template.Must(template.New("pages").Parse(pagesHTML))

// pageData feeds every page; each page reads the fields it needs.
type pageData struct {
	Nonce   string
	Title   string
	Message string // error text (error page) or sign-in failure (login page)

	RequestID string
	CSRF      string

	// Sign-in page.
	LocalLogin   bool
	ProviderName string

	// Consent page.
	ClientName   string
	ClientKind   string
	RedirectHost string
	Loopback     bool
	Scopes       []string
	SignedInAs   string
}

// securityHeaders apply to every page and redirect of the browser flow.
// The CSP has no form-action: Chrome applies it to the redirect that
// follows the consent POST, which goes to the client's redirect URI.
func securityHeaders(h http.Header, nonce string) {
	src := "'none'"
	if nonce != "" {
		src = "'nonce-" + nonce + "'"
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+src+"; script-src "+src+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

func (s *Server) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.Nonce = randomToken(16)
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		s.log.Error("rendering a page", zapString("page", name), errField(err))
		securityHeaders(w.Header(), "")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header(), d.Nonce)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, status int, title, msg string) {
	s.render(w, status, "error", pageData{Title: title, Message: msg})
}

func (s *Server) renderLogin(w http.ResponseWriter, requestID string, sess *session, msg string, status int) {
	d := pageData{
		Title:      "Sign in",
		Message:    msg,
		RequestID:  requestID,
		CSRF:       s.csrfToken(requestID, sess.BrowserID),
		LocalLogin: len(s.opt.Users) > 0,
	}
	if s.opt.Provider != nil {
		d.ProviderName = s.opt.Provider.Name()
	}
	s.render(w, status, "login", d)
}

func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, requestID string, sess *session, p *pendingRequest, c *client) {
	host := ""
	if u, err := url.Parse(p.RedirectURI); err == nil {
		host = u.Hostname()
	}
	d := pageData{
		Title:        "Allow access?",
		RequestID:    requestID,
		CSRF:         s.csrfToken(requestID, sess.BrowserID),
		ClientName:   c.displayName(),
		ClientKind:   clientKindText(c),
		RedirectHost: host,
		Loopback:     clientmeta.IsLoopbackHost(host),
		Scopes:       strings.Fields(p.Scope),
		SignedInAs:   sess.User.displayName(),
	}
	s.render(w, http.StatusOK, "consent", d)
}

// clientKindText tells the user where the client's name comes from.
func clientKindText(c *client) string {
	switch c.kind {
	case kindPreRegistered:
		return "This application was registered by the administrator of this server."
	case kindMetadata:
		host := c.id
		if u, err := url.Parse(c.id); err == nil {
			host = u.Host
		}
		return "This application is described by a document at " + host + "; that site chose its name."
	default:
		return "This application registered itself with this server; it chose its own name."
	}
}
