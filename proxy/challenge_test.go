package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestChallengeFormatting(t *testing.T) {
	g := &Gateway{metadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"}
	rm := `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`
	tests := []struct {
		d    denial
		want string
	}{
		{denial{status: 401}, `Bearer ` + rm},
		{denial{status: 401, scopes: []string{"a", "b"}}, `Bearer ` + rm + `, scope="a b"`},
		{denial{status: 401, code: errInvalidToken, desc: "token has expired"}, `Bearer ` + rm + `, error="invalid_token", error_description="token has expired"`},
		// Quotes, backslashes and line breaks can never escape the quoted-string.
		{denial{status: 403, code: errInsufficientScope, desc: "a \"quoted\" \\ value\r\nX-Evil: 1", scopes: []string{`sc"ope`}},
			`Bearer ` + rm + `, error="insufficient_scope", error_description="a quoted  valueX-Evil: 1", scope="scope"`},
	}
	for _, tc := range tests {
		if got := g.challenge(tc.d); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name    string
		header  []string
		query   string
		token   string
		status  int // 0: no denial
		errCode string
	}{
		{"none", nil, "", "", 0, ""},
		{"bearer", []string{"Bearer abc.def-ghi_jkl~"}, "", "abc.def-ghi_jkl~", 0, ""},
		{"scheme case-insensitive", []string{"BEARER abc"}, "", "abc", 0, ""},
		{"padding", []string{"Bearer abc=="}, "", "abc==", 0, ""},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", "", 400, errInvalidRequest},
		{"query token", []string{"Bearer a"}, "access_token=x", "", 400, errInvalidRequest},
		{"query token alone", nil, "a=1&access_token=x", "", 400, errInvalidRequest},
		{"empty token", []string{"Bearer "}, "", "", 400, errInvalidRequest},
		{"token with space", []string{"Bearer a b"}, "", "", 400, errInvalidRequest},
		{"padding in the middle", []string{"Bearer a=b"}, "", "", 400, errInvalidRequest},
		{"other scheme", []string{"Basic YTpi"}, "", "", 401, ""},
		{"no scheme", []string{"abc"}, "", "", 401, ""},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodPost, "/mcp?"+tc.query, nil)
		for _, v := range tc.header {
			r.Header.Add("Authorization", v)
		}
		tok, d := bearerToken(r)
		switch {
		case tc.status == 0 && (d != nil || tok != tc.token):
			t.Errorf("%s: got %q %+v", tc.name, tok, d)
		case tc.status != 0 && (d == nil || d.status != tc.status || d.code != tc.errCode || tok != ""):
			t.Errorf("%s: got %q %+v, want status %d code %q", tc.name, tok, d, tc.status, tc.errCode)
		}
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	h := http.Header{}
	for _, name := range []string{"X-Forwarded-User", "X_Forwarded_User", "X-FORWARDED-EMAIL", "X_forwarded-Email", "X-Forwarded-Users", "Accept"} {
		h[name] = []string{"v"}
	}
	stripIdentityHeaders(h)
	if len(h) != 2 || h["X-Forwarded-Users"] == nil || h["Accept"] == nil {
		t.Fatalf("left %v", h)
	}
}
