// Package server is Strata's HTTP API: handlers over a store and the fraud
// rules, the OpenAPI document they generate, and the error catalog of
// package api on the wire. What it serves (which store, which rules) is
// wired by internal/app.
//
// The handlers are registered with huma (github.com/danielgtaylor/huma/v2)
// on the standard library's ServeMux: huma derives the OpenAPI 3.1
// document and the request validation from the Go types, so the document
// can never drift from the code; the hot paths (append, authorize) cost a
// few µs more for it, measured in docs/benchmarks.md.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// Options says what the server serves. Store is required.
type Options struct {
	Store store.Store
	// Rules answers /v1/authorize and /v1/rules (nil: those answer
	// not_found).
	Rules *rules.Authorizer
	// MaxBodyBytes caps a request body (8 MiB).
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Examples runs the bank and order examples' commands and folds
	// aggregates' state (nil: those routes answer not_found).
	Examples *examples.Catalog
	// ReadModels is the catalog of read models queries run over (nil:
	// those routes answer not_found).
	ReadModels *projection.Catalog
	// Projections applies and rebuilds the projections the server runs
	// (nil: those routes answer not_found).
	Projections interface {
		Apply(ctx context.Context, p *projection.Declarative, src []byte) error
		Rebuild(ctx context.Context, name string) error
	}
	// Shared, when set, is the read side the nodes of a cluster share in
	// PostgreSQL (strata serve --cluster): it answers the projection and
	// query routes instead of ReadModels and Projections.
	Shared SharedReadSide
	// Jobs are the windowed jobs the server runs (nil: those routes
	// answer not_found).
	Jobs jobRunner
	// Tokens are the API tokens (internal/config); none: loopback clients
	// only, without a token.
	Tokens []config.Token
}

// apiVersion is the API's version in the OpenAPI document: /v1 paths.
const apiVersion = "1.0.0"

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	opts Options
	mux  *http.ServeMux
	api  huma.API
	// done ends live subscriptions at Close: http.Server.Shutdown waits
	// for handlers, and a subscription never returns on its own.
	done      context.Context
	closeDone context.CancelFunc
	closeOnce sync.Once
	metrics   *metrics
}

var setErrors sync.Once

// New builds the server's routes.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	setErrors.Do(func() { huma.NewError = newError })
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.done, s.closeDone = context.WithCancel(context.Background())
	cfg := huma.DefaultConfig("Strata", apiVersion)
	cfg.Info.Description = "Strata's HTTP API: the event log, live subscriptions, fraud rules and authorization. Every error is an api.Error with a stable code (see docs/server.md)."
	cfg.DocsPath, cfg.SchemasPath, cfg.CreateHooks = "", "", nil
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "An API token from the server's configuration file (strata token new). Without tokens configured, only loopback clients are served, without one."},
	}
	s.api = humago.New(s.mux, cfg)
	s.metrics = s.newMetrics()
	s.api.UseMiddleware(s.metrics.middleware, s.authMiddleware)
	s.mux.Handle("GET /metrics", s.authHTTP(config.ScopeRead, s.metrics.handler()))
	s.routes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, api.NewError(api.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Bodies are JSON (rule sets YAML or JSON): a request that does not say
	// so, such as curl -d's form type, is read as JSON rather than refused.
	if ct := r.Header.Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		r.Header.Set("Content-Type", "application/json")
	}
	s.mux.ServeHTTP(w, r)
}

// Close ends live subscriptions, so that http.Server.Shutdown can finish.
func (s *Server) Close() { s.closeOnce.Do(s.closeDone) }

// OpenAPI is the API's OpenAPI 3.1 document, as served at /openapi.json.
func (s *Server) OpenAPI() ([]byte, error) {
	b, err := json.MarshalIndent(s.api.OpenAPI(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// newError puts huma's own errors (a body that is not JSON, one that fails
// the schema, one too large, a bad parameter) in the catalog.
func newError(status int, msg string, errs ...error) huma.StatusError {
	code := api.CodeInternal
	body := false
	var details []string
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d *huma.ErrorDetail
		if errors.As(err, &d) {
			// Not d.Value: it echoes the whole body.
			body = body || strings.HasPrefix(d.Location, "body")
			details = append(details, strings.TrimSpace(d.Location+": "+d.Message))
			continue
		}
		details = append(details, err.Error())
	}
	switch status {
	case http.StatusBadRequest:
		code = api.CodeBadRequest
		if body {
			code = api.CodeBadJSON
		}
	case http.StatusUnprocessableEntity:
		code = api.CodeBadRequest
		if body {
			code = api.CodeInvalidBody
		}
	case http.StatusRequestEntityTooLarge:
		code = api.CodeBodyTooLarge
	case http.StatusUnauthorized:
		code = api.CodeUnauthorized
	case http.StatusForbidden:
		code = api.CodeForbidden
	case http.StatusNotFound:
		code = api.CodeNotFound
	case http.StatusMethodNotAllowed:
		code = api.CodeMethodNotAllowed
	case http.StatusUnsupportedMediaType, http.StatusNotAcceptable, http.StatusRequestTimeout:
		code = api.CodeBadRequest
	case http.StatusServiceUnavailable:
		code = api.CodeUnavailable
	}
	switch code {
	case api.CodeBadJSON:
		msg = "the body is not valid JSON"
	case api.CodeInvalidBody:
		msg = "the body is not what the operation takes (see details and /openapi.json)"
	}
	e := api.NewError(code, "%s", msg)
	if status != 0 && code == api.CodeBadRequest {
		e.Status = http.StatusBadRequest
	}
	e.Details = details
	return e
}

// writeError writes e outside huma (routes it does not know).
func writeError(w http.ResponseWriter, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// fail is err in the catalog, logged when it is the server's fault.
func (s *Server) fail(ctx context.Context, err error) error {
	e := api.FromError(err)
	if e.Status >= 500 {
		s.opts.Logger.ErrorContext(ctx, "request failed", "code", e.Code, "err", err)
	}
	return e
}
