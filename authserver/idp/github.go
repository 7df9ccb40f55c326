package idp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// GitHub's public endpoints; GitHubOptions can point elsewhere (GitHub
// Enterprise Server, tests).
const (
	gitHubAuthURL  = "https://github.com/login/oauth/authorize"
	gitHubTokenURL = "https://github.com/login/oauth/access_token"
	gitHubAPIURL   = "https://api.github.com"
)

// gitHubOrgPages bounds how many pages of 100 organisations are read; a
// user beyond that is treated as not a member of the rest (fail closed).
const gitHubOrgPages = 5

// GitHubOptions configures sign-in with a GitHub OAuth app.
type GitHubOptions struct {
	ClientID, ClientSecret, RedirectURL string
	Allow                               Allow
	AuthURL, TokenURL, APIURL           string // defaults to github.com's
	Client                              *http.Client
	DisplayName                         string // button text; default "GitHub"
}

// GitHub signs users in with a GitHub OAuth app. GitHub is not an OpenID
// provider, so identity comes from its REST API using the user's access
// token, which is used for nothing else and never kept.
type GitHub struct {
	name      string
	oauth     *oauth2.Config
	api       string
	host      string // token endpoint host, for error messages
	allow     Allow
	client    *http.Client
	configErr error
}

// NewGitHub returns a provider for o. It does no I/O; configuration
// mistakes are reported by Ready.
func NewGitHub(o GitHubOptions) *GitHub {
	o.AuthURL = cmp.Or(o.AuthURL, gitHubAuthURL)
	o.TokenURL = cmp.Or(o.TokenURL, gitHubTokenURL)
	o.APIURL = strings.TrimSuffix(cmp.Or(o.APIURL, gitHubAPIURL), "/")
	scopes := []string{"read:user", "user:email"}
	if len(o.Allow.Orgs) > 0 {
		// Only ask for organisation access when it decides anything.
		scopes = append(scopes, "read:org")
	}
	return &GitHub{
		name: cmp.Or(o.DisplayName, "GitHub"),
		oauth: &oauth2.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret,
			RedirectURL:  o.RedirectURL,
			Scopes:       scopes,
			Endpoint: oauth2.Endpoint{
				AuthURL:   o.AuthURL,
				TokenURL:  o.TokenURL,
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
		api:       o.APIURL,
		host:      hostOf(o.TokenURL),
		allow:     o.Allow,
		client:    boundedClient(o.Client),
		configErr: checkGitHubOptions(o),
	}
}

// checkGitHubOptions reports every problem at once.
func checkGitHubOptions(o GitHubOptions) error {
	var errs []error
	if o.ClientID == "" {
		errs = append(errs, errors.New("GitHub client ID is empty"))
	}
	if o.ClientSecret == "" {
		errs = append(errs, errors.New("GitHub client secret is empty"))
	}
	for _, e := range []struct{ name, url string }{
		{"GitHub redirect URL", o.RedirectURL},
		{"GitHub authorization URL", o.AuthURL},
		{"GitHub token URL", o.TokenURL},
		{"GitHub API URL", o.APIURL},
	} {
		if err := checkEndpoint(e.name, e.url); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("idp: %w", err)
	}
	return nil
}

// Name is the sign-in button text.
func (g *GitHub) Name() string { return g.name }

// Ready reports configuration errors; GitHub needs no discovery.
func (g *GitHub) Ready() error { return g.configErr }

// AuthCodeURL is GitHub's authorization URL for this sign-in, with state
// and a PKCE S256 challenge.
func (g *GitHub) AuthCodeURL(_ context.Context, f Flow) (string, error) {
	if g.configErr != nil {
		return "", g.configErr
	}
	if err := checkFlow(f, false); err != nil {
		return "", err
	}
	return g.oauth.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier)), nil
}

// Exchange redeems code for a GitHub access token, reads the user, their
// primary verified email and (when an organisation allowlist is set) their
// organisations, and applies the allowlist.
func (g *GitHub) Exchange(ctx context.Context, code string, f Flow) (*Identity, error) {
	if g.configErr != nil {
		return nil, g.configErr
	}
	if err := checkFlow(f, false); err != nil {
		return nil, err
	}
	if code == "" {
		return nil, errors.New("idp: GitHub returned no authorization code")
	}
	tok, err := g.oauth.Exchange(withClient(ctx, g.client), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, fmt.Errorf("idp: exchanging the code at %s: %w", g.host, tokenError(err))
	}
	id, err := g.identify(ctx, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	if err := g.allow.check(id); err != nil {
		return nil, err
	}
	return id, nil
}

// identify asks the GitHub API who owns accessToken.
func (g *GitHub) identify(ctx context.Context, accessToken string) (*Identity, error) {
	var user struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := g.get(ctx, accessToken, "/user", &user); err != nil {
		return nil, err
	}
	if user.ID <= 0 || user.Login == "" {
		return nil, errors.New("idp: GitHub API /user returned no user id or login")
	}
	id := &Identity{
		Subject:  strconv.FormatInt(user.ID, 10),
		Username: user.Login,
		Name:     user.Name,
	}
	email, err := g.primaryEmail(ctx, accessToken)
	if err != nil {
		return nil, err
	}
	id.Email = email
	if len(g.allow.Orgs) > 0 {
		if id.Orgs, err = g.orgs(ctx, accessToken); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// primaryEmail returns the user's primary email if GitHub says it is
// verified, else "". A verified secondary address is not used: the
// primary is the one the user chose to be known by.
func (g *GitHub) primaryEmail(ctx context.Context, accessToken string) (string, error) {
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := g.get(ctx, accessToken, "/user/emails", &emails); err != nil {
		return "", err
	}
	for _, e := range emails {
		if e.Primary && e.Verified {
			return e.Email, nil
		}
	}
	return "", nil
}

// orgs lists the logins of the user's organisations, reading at most
// gitHubOrgPages pages.
func (g *GitHub) orgs(ctx context.Context, accessToken string) ([]string, error) {
	var logins []string
	for page := 1; page <= gitHubOrgPages; page++ {
		var batch []struct {
			Login string `json:"login"`
		}
		path := "/user/orgs?per_page=100&page=" + strconv.Itoa(page)
		if err := g.get(ctx, accessToken, path, &batch); err != nil {
			return nil, err
		}
		for _, o := range batch {
			logins = append(logins, o.Login)
		}
		if len(batch) < 100 {
			break
		}
	}
	return logins, nil
}

// get calls one GitHub API endpoint and decodes its JSON answer into v.
// Errors name the endpoint, never the token.
func (g *GitHub) get(ctx context.Context, accessToken, path string, v any) error {
	endpoint, _, _ := strings.Cut(path, "?")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.api+path, nil)
	if err != nil {
		return fmt.Errorf("idp: building the GitHub API request %s: %w", endpoint, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("idp: calling the GitHub API %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("idp: GitHub API %s answered %s", endpoint, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("idp: reading the GitHub API %s answer: %w", endpoint, err)
	}
	return nil
}
