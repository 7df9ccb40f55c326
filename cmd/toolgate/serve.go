package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/discovery"
	"github.com/toolgate/toolgate/policy"
	"github.com/toolgate/toolgate/proxy"
	"github.com/toolgate/toolgate/upstream"
)

// serve runs the gateway until ctx ends. When listening is non-nil it
// receives the bound address once the listener is open (tests use port 0).
func serve(ctx context.Context, environ []string, listening chan<- string) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	// Outbound calls to the authorization server honour HTTPS_PROXY, as
	// corporate networks need; upstream traffic never does.
	outbound := &http.Client{Timeout: 15 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	issuer := auth.NewIssuer(cfg.AuthorizationServerURL, cfg.JWKSURL, outbound, cfg.JWKSRefreshInterval, log.Named("issuer"))
	verifier, err := auth.NewJWTVerifier(auth.JWTOptions{
		Issuer:    cfg.AuthorizationServerURL,
		Audiences: cfg.Audiences,
		Keys:      issuer.Keys,
		CacheSize: cfg.TokenCacheSize,
	})
	if err != nil {
		return err
	}

	var pol *policy.Policy
	supported := cfg.Supported
	if cfg.ToolPolicyFile != "" {
		if pol, err = policy.Load(cfg.ToolPolicyFile); err != nil {
			return fmt.Errorf("TOOL_POLICY_FILE: %w", err)
		}
		if cfg.ScopesSupported == "" {
			// Advertise what the tools need, so clients can ask for it.
			supported = union(cfg.Required, pol.Scopes())
		}
	}

	prm, err := discovery.NewResourceHandler(discovery.ResourceMetadata{
		Resource:               cfg.ResourceServerURL,
		AuthorizationServers:   []string{cfg.AuthorizationServerURL},
		ScopesSupported:        supported,
		BearerMethodsSupported: []string{"header"},
	})
	if err != nil {
		return err
	}
	challengeScopes := cfg.Required
	if len(challengeScopes) == 0 {
		challengeScopes = supported
	}
	gateway := proxy.New(proxy.Options{
		Upstream:            cfg.Upstream,
		Transport:           upstream.NewTransport(upstream.Options{MaxIdleConns: cfg.UpstreamMaxIdleConns}),
		Verifier:            verifier,
		ResourceMetadataURL: discovery.MetadataURL(cfg.Resource),
		RequiredScopes:      cfg.Required,
		ChallengeScopes:     challengeScopes,
		ForwardAccessToken:  cfg.ForwardAccessToken,
		MaxBodyBytes:        cfg.MaxBodyBytes,
		AllowedOrigins:      cfg.Origins,
		Log:                 log.Named("gateway"),
		Policy:              pol,
		ChallengeMode:       cfg.ChallengeMode,
	})

	srv := &http.Server{
		Handler:           routes(cfg, gateway, prm, issuer),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// No WriteTimeout: it would cut SSE streams. Streams end when the
		// client or the upstream ends them, or at shutdown.
		ErrorLog: zap.NewStdLog(log.Named("http")),
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR %s: %w", cfg.ListenAddr, err)
	}
	if listening != nil {
		listening <- ln.Addr().String()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go issuer.Run(runCtx)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("toolgate listening",
		zap.String("addr", ln.Addr().String()),
		zap.String("resource", cfg.ResourceServerURL),
		zap.String("upstream", cfg.UpstreamURL),
		zap.String("issuer", cfg.AuthorizationServerURL),
		zap.String("policy", cfg.ToolPolicyFile),
		zap.String("challenge_mode", cfg.ChallengeMode),
		zap.String("version", version))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.Duration("timeout", cfg.ShutdownTimeout))
	gateway.CloseStreams()
	sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests did not finish in time; closing them", zap.Error(err))
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// routes is every path toolgate answers; anything else is 404.
func routes(cfg *config.Config, gateway http.Handler, prm http.Handler, issuer *auth.Issuer) http.Handler {
	mux := http.NewServeMux()
	mcpPath := cfg.Resource.EscapedPath()
	if mcpPath == "" || mcpPath == "/" {
		mcpPath = "/{$}"
	}
	mux.Handle(mcpPath, gateway)
	mux.Handle(discovery.MetadataPath(cfg.Resource), prm)
	mux.Handle(discovery.WellKnownResourcePath, prm)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := issuer.Ready(); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		writeStatus(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "the MCP endpoint is " + cfg.Resource.Path})
	})
	return mux
}

// union keeps a's order and appends what b adds.
func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func writeStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newLogger(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	cfg := zap.NewProductionConfig()
	if format == "console" {
		cfg = zap.NewDevelopmentConfig()
	}
	cfg.DisableStacktrace = true // log lines say what failed; stacks are noise here
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil // every request line is kept; sampling would hide denials
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}
