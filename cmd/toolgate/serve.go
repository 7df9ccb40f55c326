package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

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
	log, stopLog, err := newLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer stopLog()

	// Outbound calls to the authorization server honour HTTPS_PROXY, as
	// corporate networks need; upstream traffic never does.
	outbound := &http.Client{Timeout: 15 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	pol, supported, err := loadPolicy(cfg)
	if err != nil {
		return err
	}
	var tokens *verification
	var as *embedded
	if cfg.Embedded {
		if as, err = newEmbedded(ctx, cfg, supported, outbound, log.Named("authserver")); err != nil {
			return err
		}
		defer as.store.Close()
		tokens, err = embeddedVerification(cfg, as)
	} else {
		tokens, err = newVerification(cfg, outbound, log)
	}
	if err != nil {
		return err
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
		Verifier:            tokens.verifier,
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
		Handler:           routes(cfg, gateway, prm, tokens.ready, as),
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
	go tokens.run(runCtx)

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
// With the embedded authorization server on, its endpoints are there too.
func routes(cfg *config.Config, gateway http.Handler, prm http.Handler, ready func() error, as *embedded) http.Handler {
	mux := http.NewServeMux()
	if as != nil {
		as.server.Register(mux)
	}
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
		if err := ready(); err != nil {
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

// loadPolicy reads TOOL_POLICY_FILE, if set, and returns the scopes the
// protected-resource metadata advertises: SCOPES_SUPPORTED when given, else
// REQUIRED_SCOPES plus every scope the policy's tools need, so clients can
// ask for them.
func loadPolicy(cfg *config.Config) (*policy.Policy, []string, error) {
	if cfg.ToolPolicyFile == "" {
		return nil, cfg.Supported, nil
	}
	pol, err := policy.Load(cfg.ToolPolicyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("TOOL_POLICY_FILE: %w", err)
	}
	if cfg.ScopesSupported != "" {
		return pol, cfg.Supported, nil
	}
	return pol, union(cfg.Required, pol.Scopes()), nil
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

// newLogger builds the process logger. Lines are buffered (up to 256 KiB
// or one second) rather than written one syscall each: at thousands of
// requests a second the per-line write was a measurable share of toolgate's
// CPU. stop flushes; serve calls it on the way out.
func newLogger(level, format string) (log *zap.Logger, stop func(), err error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if format == "console" {
		encCfg = zap.NewDevelopmentEncoderConfig()
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.Lock(os.Stderr), Size: 256 << 10, FlushInterval: time.Second}
	// No sampling: every request line is kept, or denials would go missing.
	// No caller or stack: the message says what failed.
	return zap.New(zapcore.NewCore(enc, ws, lvl)), func() { _ = ws.Stop() }, nil
}
