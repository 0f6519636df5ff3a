package server

import (
	"bytes"
	"context"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/rules/alerts"
	"github.com/stratadb/strata/store"
)

// actor is who the rules stream records for a change made over HTTP: the
// token's name, else (no tokens: a loopback client) what the request says
// with by=, else "http".
func actor(ctx context.Context, by string) string {
	if t, _ := ctx.Value(tokenKey{}).(*config.Token); t != nil {
		return "token:" + t.Name
	}
	if by != "" {
		return by
	}
	return "http"
}

func (s *Server) registerRules() {
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "authorize", Method: http.MethodPost, Path: "/v1/authorize",
		Summary:     "Decide about a transaction with the fraud rules, and record it",
		Description: "Evaluates every rule in force over live windows with the transaction counted in, appends the transaction and the decision to the log in one durable append (stream txn-USER), and answers approve, review or deny with the rules that fired.",
		Tags:        []string{"rules"}, Errors: []int{400, 404, 422},
		MaxBodyBytes: 64 << 10,
	}, config.ScopeAppend), s.authorize)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "list-rules", Method: http.MethodGet, Path: "/v1/rules",
		Summary: "The fraud rules, disabled ones included, with their versions", Tags: []string{"rules"}, Errors: []int{404},
	}, config.ScopeRead), s.listRules)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "apply-rules", Method: http.MethodPut, Path: "/v1/rules",
		Summary:     "Add or replace rules",
		Description: "The body is a rule set, YAML or JSON, as `strata rules apply` reads (`{\"rules\": [...]}`): each rule replaces the one of its name or is added. The change is recorded in the rules stream, and the windows are rebuilt from the log so that new rules are right from their first decision. Errors name the field (rules[0].window.size).",
		Tags:        []string{"rules"}, Errors: []int{404, 422},
		MaxBodyBytes: 1 << 20,
	}, config.ScopeAdmin), s.applyRules)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "alerts", Method: http.MethodGet, Path: "/v1/alerts",
		Summary:     "Follow the fraud alerts, over Server-Sent Events",
		Description: "Every deny, review, alert rule that fired and amendment raises an alert (the stream alerts, derived from the decisions by the server). History first, then live; each SSE event's id is the alert's position, its data the alert; Last-Event-ID resumes.",
		Tags:        []string{"rules"}, Errors: []int{400},
		Responses: map[string]*huma.Response{"200": {
			Description: "A stream of alerts",
			Content:     map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: huma.TypeString}}},
		}},
	}, config.ScopeRead), s.alerts)
	for _, op := range []struct {
		id, method, path, summary string
		do                        func(*rules.Authorizer, context.Context, string, string) error
	}{
		{"disable-rule", http.MethodPost, "/v1/rules/{name}/disable", "Disable a rule (it stays listed)", (*rules.Authorizer).Disable},
		{"enable-rule", http.MethodPost, "/v1/rules/{name}/enable", "Enable a disabled rule", (*rules.Authorizer).Enable},
		{"remove-rule", http.MethodDelete, "/v1/rules/{name}", "Remove a rule", (*rules.Authorizer).Remove},
	} {
		huma.Register(s.api, scoped(huma.Operation{
			OperationID: op.id, Method: op.method, Path: op.path, Summary: op.summary,
			Tags: []string{"rules"}, Errors: []int{404},
		}, config.ScopeAdmin), func(ctx context.Context, in *ruleNameInput) (*rulesOutput, error) {
			a, err := s.rules()
			if err != nil {
				return nil, err
			}
			if err := op.do(a, ctx, actor(ctx, in.By), in.Name); err != nil {
				return nil, s.fail(ctx, err)
			}
			return s.ruleSet(a), nil
		})
	}
}

func (s *Server) rules() (*rules.Authorizer, error) {
	if s.opts.Rules == nil {
		return nil, api.NewError(api.CodeNotFound, "this server runs no fraud rules")
	}
	return s.opts.Rules, nil
}

type authorizeInput struct{ Body api.Transaction }

type decisionOutput struct{ Body api.Decision }

func (s *Server) authorize(ctx context.Context, in *authorizeInput) (*decisionOutput, error) {
	a, err := s.rules()
	if err != nil {
		return nil, err
	}
	txn, err := in.Body.ToTransaction()
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := stream(ctx, rules.StreamOf(txn.User)); err != nil {
		return nil, err
	}
	d, err := a.Authorize(ctx, txn)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if !d.Repeated {
		s.metrics.decisions.WithLabelValues(string(d.Outcome)).Inc()
	}
	return &decisionOutput{Body: api.FromDecision(&d)}, nil
}

type rulesOutput struct{ Body api.Rules }

func (s *Server) ruleSet(a *rules.Authorizer) *rulesOutput {
	rs, versions := a.AllRules()
	out := &rulesOutput{Body: api.Rules{Rules: []api.Rule{}}}
	for i := range rs {
		out.Body.Rules = append(out.Body.Rules, api.FromRule(&rs[i], versions[rs[i].Name]))
	}
	return out
}

func (s *Server) listRules(ctx context.Context, _ *struct{}) (*rulesOutput, error) {
	a, err := s.rules()
	if err != nil {
		return nil, err
	}
	return s.ruleSet(a), nil
}

type applyRulesInput struct {
	By      string `query:"by" doc:"who makes the change, as the rules stream records it (ignored with a token: its name is recorded)"`
	RawBody []byte `contentType:"application/yaml"`
}

func (s *Server) applyRules(ctx context.Context, in *applyRulesInput) (*rulesOutput, error) {
	a, err := s.rules()
	if err != nil {
		return nil, err
	}
	spec, err := rules.Parse(bytes.NewReader(in.RawBody))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := a.Apply(ctx, actor(ctx, in.By), slices.Clone(spec.Rules)...); err != nil {
		return nil, s.fail(ctx, err)
	}
	return s.ruleSet(a), nil
}

type ruleNameInput struct {
	Name string `path:"name"`
	By   string `query:"by" doc:"who makes the change, as the rules stream records it (ignored with a token: its name is recorded)"`
}

type alertsInput struct {
	After       uint64 `query:"after" doc:"alerts after this position (0: from the first)"`
	LastEventID string `header:"Last-Event-ID"`
}

func (s *Server) alerts(ctx context.Context, in *alertsInput) (*huma.StreamResponse, error) {
	if err := stream(ctx, alerts.Stream); err != nil {
		return nil, err
	}
	after, err := resumeAfter(in.After, in.LastEventID)
	if err != nil {
		return nil, err
	}
	f := store.Filter{Types: []string{alerts.TypeAlert}, StreamPrefix: alerts.Stream}
	return s.sse(store.SubscribeOptions{After: after, Filter: f}, func(rec *event.Record) ([]byte, error) {
		if rec.Stream != alerts.Stream {
			return nil, nil
		}
		return rec.Data, nil
	}), nil
}
