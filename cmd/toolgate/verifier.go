package main

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/config"
)

// verification is the token verifier the configuration asks for, together
// with what /readyz reports and what keeps the verifier's inputs current.
type verification struct {
	verifier auth.Verifier
	// ready is nil once the verifier can judge tokens (keys loaded,
	// introspection endpoint known), else what is still missing.
	ready func() error
	// run loads and refreshes the issuer's metadata and keys until ctx ends.
	run func(ctx context.Context)
}

// newVerification decides, once, which validator applies: TOKEN_VALIDATOR
// when forced, else the issuer's provider (Google, Auth0, generic) with
// introspection for opaque tokens when credentials are configured. Each
// provider's behaviour lives in package auth; this only assembles it.
func newVerification(cfg *config.Config, client *http.Client, log *zap.Logger) (*verification, error) {
	jwksURL := cfg.JWKSURL
	if cfg.Google && jwksURL == "" {
		jwksURL = auth.GoogleJWKSURL
	}
	issuer := auth.NewIssuer(cfg.AuthorizationServerURL, jwksURL, client, cfg.JWKSRefreshInterval, log.Named("issuer"))
	// Google's key URL is documented; its discovery document adds nothing
	// toolgate needs, so only the keys are loaded.
	issuer.SkipDiscovery = cfg.Google
	jwt := func() (auth.Verifier, error) {
		return auth.NewJWTVerifier(auth.JWTOptions{
			Issuer:    cfg.AuthorizationServerURL,
			Audiences: cfg.Audiences,
			Keys:      issuer.Keys,
			CacheSize: cfg.TokenCacheSize,
		})
	}
	introspection := func() (*auth.IntrospectionVerifier, error) {
		if cfg.IntrospectionAllowNoAudience {
			log.Warn("INTROSPECTION_ALLOW_NO_AUDIENCE=true: opaque tokens without an audience are accepted, including tokens the authorization server issued for other resources")
		}
		return auth.NewIntrospectionVerifier(auth.IntrospectionOptions{
			Endpoint: func() string {
				if cfg.IntrospectionURL != "" {
					return cfg.IntrospectionURL
				}
				if md := issuer.Metadata(); md != nil {
					return md.IntrospectionEndpoint
				}
				return ""
			},
			ClientID:        cfg.IntrospectionClientID,
			ClientSecret:    cfg.IntrospectionClientSecret,
			AuthMethod:      cfg.IntrospectionAuthMethod,
			Issuer:          cfg.AuthorizationServerURL,
			Audiences:       cfg.Audiences,
			AllowNoAudience: cfg.IntrospectionAllowNoAudience,
			Client:          client,
			CacheSize:       cfg.TokenCacheSize,
		})
	}
	// Introspection needs the issuer only to learn the endpoint; the JWT
	// verifier also needs its keys. Ready means both, where both are used.
	readyWith := func(iv *auth.IntrospectionVerifier) func() error {
		return func() error {
			if err := issuer.Ready(); err != nil {
				return err
			}
			return iv.Ready()
		}
	}
	chosen := func(validator string, fields ...zap.Field) {
		log.Info("token validation", append([]zap.Field{zap.String("validator", validator)}, fields...)...)
	}

	switch {
	case cfg.Google:
		v, err := auth.NewGoogleVerifier(auth.GoogleOptions{
			ClientIDs:    cfg.GoogleClients,
			Keys:         issuer.Keys,
			TokenInfoURL: cfg.GoogleTokenInfoURL,
			Client:       client,
			CacheSize:    cfg.TokenCacheSize,
		})
		if err != nil {
			return nil, err
		}
		chosen("google", zap.Strings("client_ids", cfg.GoogleClients))
		return &verification{verifier: v, ready: issuer.Ready, run: issuer.Run}, nil

	case cfg.TokenValidator == "introspection":
		iv, err := introspection()
		if err != nil {
			return nil, err
		}
		chosen("introspection")
		if cfg.IntrospectionURL != "" {
			return &verification{verifier: iv, ready: iv.Ready, run: func(context.Context) {}}, nil
		}
		issuer.MetadataOnly = true
		return &verification{verifier: iv, ready: func() error {
			if iv.Ready() == nil {
				return nil
			}
			return readyWith(iv)()
		}, run: issuer.Run}, nil

	case cfg.TokenValidator == "jwt":
		v, err := jwt()
		if err != nil {
			return nil, err
		}
		chosen("jwt")
		return &verification{verifier: v, ready: issuer.Ready, run: issuer.Run}, nil
	}

	// auto: JWTs by the issuer's keys; opaque tokens by introspection when
	// configured, else explained by the provider's profile.
	v, err := jwt()
	if err != nil {
		return nil, err
	}
	shape := auth.ByShape{JWT: v}
	ready := issuer.Ready
	provider := auth.ProviderOf(cfg.AuthorizationServerURL)
	switch {
	case cfg.Introspects:
		iv, err := introspection()
		if err != nil {
			return nil, err
		}
		shape.Opaque, ready = iv, readyWith(iv)
		chosen("jwt+introspection", zap.String("provider", string(provider)))
	case provider == auth.ProviderAuth0:
		shape.Opaque = &auth.Auth0Opaque{Resource: cfg.ResourceServerURL, Log: log.Named("auth0")}
		chosen("jwt", zap.String("provider", string(provider)))
	default:
		chosen("jwt", zap.String("provider", string(provider)))
	}
	return &verification{verifier: shape, ready: ready, run: issuer.Run}, nil
}
