package server

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/internal/config"
)

// scoped marks an operation with the scope a token needs for it; operations
// without one (health, the OpenAPI document) are open to every client.
func scoped(op huma.Operation, scope config.Scope) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["scope"] = scope
	op.Security = []map[string][]string{{"bearer": {string(scope)}}}
	op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden)
	return op
}

type tokenKey struct{}

// check authenticates a request for scope: with no tokens configured only
// loopback clients are served; with tokens, every request needs one
// (Authorization: Bearer SECRET) that grants scope. It runs before the
// handler, so a refused request writes nothing.
func (s *Server) check(remoteAddr, authorization string, scope config.Scope) (*config.Token, *api.Error) {
	if len(s.opts.Tokens) == 0 {
		host, _, err := net.SplitHostPort(remoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return nil, api.NewError(api.CodeForbidden, "no API tokens are configured: only loopback clients are served")
		}
		return nil, nil
	}
	secret, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || secret == "" {
		return nil, api.NewError(api.CodeUnauthorized, "send an API token: Authorization: Bearer SECRET")
	}
	hash := config.Hash(secret)
	var found *config.Token
	for i := range s.opts.Tokens {
		t := &s.opts.Tokens[i]
		if subtle.ConstantTimeCompare([]byte(hash), []byte(strings.ToLower(t.SHA256))) == 1 {
			found = t
		}
	}
	if found == nil {
		return nil, api.NewError(api.CodeUnauthorized, "unknown API token")
	}
	if !found.Has(scope) {
		return nil, api.NewError(api.CodeForbidden, "token %q lacks the %s scope", found.Name, scope)
	}
	return found, nil
}

// authMiddleware applies check to every scoped operation huma serves.
func (s *Server) authMiddleware(ctx huma.Context, next func(huma.Context)) {
	scope, _ := ctx.Operation().Metadata["scope"].(config.Scope)
	if scope == "" {
		next(ctx)
		return
	}
	t, e := s.check(ctx.RemoteAddr(), ctx.Header("Authorization"), scope)
	if e != nil {
		if e.Code == api.CodeUnauthorized {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="strata"`)
		}
		huma.WriteErr(s.api, ctx, e.Status, e.Message)
		return
	}
	if t != nil {
		ctx = huma.WithValue(ctx, tokenKey{}, t)
	}
	next(ctx)
}

// authHTTP is check for the handlers outside huma (/metrics).
func (s *Server) authHTTP(scope config.Scope, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, e := s.check(r.RemoteAddr, r.Header.Get("Authorization"), scope); e != nil {
			writeError(w, e)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// stream refuses a stream the request's token is not restricted to.
func stream(ctx context.Context, name string) error {
	if t, _ := ctx.Value(tokenKey{}).(*config.Token); t != nil && !t.Allows(name) {
		return api.NewError(api.CodeForbidden, "token %q may not touch stream %q", t.Name, name)
	}
	return nil
}

// prefix refuses a read of the whole log by a token restricted to some
// streams, unless it filters by a prefix within them.
func prefix(ctx context.Context, p string) error {
	t, _ := ctx.Value(tokenKey{}).(*config.Token)
	if t == nil || len(t.Streams) == 0 {
		return nil
	}
	for _, allowed := range t.Streams {
		if strings.HasPrefix(p, allowed) {
			return nil
		}
	}
	return api.NewError(api.CodeForbidden, "token %q reads only streams starting with %s: filter with stream_prefix", t.Name, strings.Join(t.Streams, ", "))
}
