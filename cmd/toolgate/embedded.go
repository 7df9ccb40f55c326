package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"go.uber.org/zap"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/authserver"
	"github.com/toolgate/toolgate/authserver/clientmeta"
	"github.com/toolgate/toolgate/authserver/idp"
	"github.com/toolgate/toolgate/authserver/store"
	"github.com/toolgate/toolgate/authserver/store/filestore"
	"github.com/toolgate/toolgate/authserver/store/redisstore"
	"github.com/toolgate/toolgate/config"
)

// embedded is toolgate's own authorization server, on when
// AUTHORIZATION_SERVER_URL is empty, with what serve needs from it.
type embedded struct {
	server *authserver.Server
	store  store.Store
	// start runs background work (the identity provider's discovery).
	start func(ctx context.Context)
}

// newEmbedded builds the authorization server from cfg. supported are the
// scopes the resource advertises, which are also the scopes it issues.
func newEmbedded(ctx context.Context, cfg *config.Config, supported []string, outbound *http.Client, log *zap.Logger) (*embedded, error) {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*embedded, error) {
		_ = st.Close()
		return nil, err
	}
	opts := authserver.Options{
		Issuer:          cfg.AuthorizationServerURL,
		Resource:        cfg.ResourceServerURL,
		ScopesSupported: supported,
		DefaultScopes:   cfg.Required,
		Store:           st,
		AccessTokenTTL:  cfg.AccessTokenTTL,
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		TrustedProxies:  cfg.Proxies,
		Log:             log,
	}
	switch {
	case cfg.SigningKey != "":
		opts.SigningKeyPEM = []byte(cfg.SigningKey)
	case cfg.SigningKeyFile != "":
		if opts.SigningKeyPEM, err = os.ReadFile(cfg.SigningKeyFile); err != nil {
			return fail(fmt.Errorf("SIGNING_KEY_FILE: %w", err))
		}
	}
	users, usersVar := cfg.LocalUsers, "LOCAL_USERS"
	if cfg.LocalUsersFile != "" {
		b, err := os.ReadFile(cfg.LocalUsersFile)
		if err != nil {
			return fail(fmt.Errorf("LOCAL_USERS_FILE: %w", err))
		}
		users, usersVar = string(b), "LOCAL_USERS_FILE"
	}
	if users != "" {
		if opts.Users, err = authserver.ParseUsers(users); err != nil {
			return fail(fmt.Errorf("%s: %w", usersVar, err))
		}
	}
	if cfg.OAuthClientsFile != "" {
		if opts.Clients, err = authserver.LoadClients(cfg.OAuthClientsFile); err != nil {
			return fail(fmt.Errorf("OAUTH_CLIENTS_FILE: %w", err))
		}
	}
	if cfg.ClientMetadataDocuments {
		mo := clientmeta.Options{AllowPrivateAddresses: cfg.ClientMetadataAllowPrivate}
		if cfg.ClientMetadataAllowPrivate {
			log.Warn("CLIENT_METADATA_ALLOW_PRIVATE_ADDRESSES=true: client metadata documents may be fetched from loopback and private addresses; development only")
		}
		if cfg.ClientMetadataCAFile != "" {
			if mo.RootCAs, err = certPool(cfg.ClientMetadataCAFile); err != nil {
				return fail(fmt.Errorf("CLIENT_METADATA_CA_FILE: %w", err))
			}
		}
		opts.Metadata = clientmeta.New(mo)
	}
	start := func(context.Context) {}
	allow := idp.Allow{Emails: cfg.AllowEmails, Domains: cfg.AllowDomains, Orgs: cfg.AllowOrgs}
	callback := cfg.AuthorizationServerURL + "/oauth/callback"
	switch cfg.IDP {
	case "google", "oidc":
		p := idp.NewOIDC(idp.OIDCOptions{
			Issuer: cfg.IDPIssuerURL, ClientID: cfg.IDPClientID, ClientSecret: cfg.IDPClientSecret,
			RedirectURL: callback, DisplayName: cfg.IDPName, Allow: allow, Client: outbound,
		})
		opts.Provider, start = p, p.Start
	case "github":
		opts.Provider = idp.NewGitHub(idp.GitHubOptions{
			ClientID: cfg.IDPClientID, ClientSecret: cfg.IDPClientSecret,
			RedirectURL: callback, Allow: allow, Client: outbound, DisplayName: cfg.IDPName,
		})
	}
	srv, err := authserver.New(ctx, opts)
	if err != nil {
		return fail(err)
	}
	log.Info("toolgate is the authorization server",
		zap.String("issuer", cfg.AuthorizationServerURL),
		zap.String("store", cfg.StoreKind),
		zap.Int("local_users", len(opts.Users)),
		zap.String("idp", cfg.IDP),
		zap.Int("preregistered_clients", len(opts.Clients)),
		zap.Bool("client_metadata_documents", cfg.ClientMetadataDocuments))
	return &embedded{server: srv, store: st, start: start}, nil
}

func openStore(ctx context.Context, cfg *config.Config, log *zap.Logger) (store.Store, error) {
	if cfg.StoreKind == "redis" {
		if u, err := url.Parse(cfg.RedisURL); err == nil && u.Scheme == "redis" && !config.IsLoopback(u.Hostname()) {
			log.Warn("REDIS_URL uses redis:// to another host: the password and the authorization server's state (keys, codes, refresh-token families) cross the network unencrypted; use rediss:// unless the network is private",
				zap.String("host", u.Hostname()))
		}
		st, err := redisstore.Open(ctx, cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("STORE=redis: %w", err)
		}
		return st, nil
	}
	st, err := filestore.Open(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	return st, nil
}

// certPool is the system roots plus the PEM certificates in file.
func certPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New(file + " holds no PEM certificate")
	}
	return pool, nil
}

// embeddedVerification checks the embedded server's tokens with its own
// public keys, handed over in memory: nothing is fetched, not even from
// itself, so it works behind any front proxy.
func embeddedVerification(cfg *config.Config, as *embedded) (*verification, error) {
	keys, err := auth.NewStaticKeySet(as.server.JWKS())
	if err != nil {
		return nil, err
	}
	v, err := auth.NewJWTVerifier(auth.JWTOptions{
		Issuer:    cfg.AuthorizationServerURL,
		Audiences: []string{cfg.ResourceServerURL},
		Keys:      keys,
		CacheSize: cfg.TokenCacheSize,
	})
	if err != nil {
		return nil, err
	}
	return &verification{verifier: v, ready: as.server.Ready, run: as.start}, nil
}
