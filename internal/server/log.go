package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/store"
)

const maxReadLimit = 10_000

func (s *Server) routes() {
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "append", Method: http.MethodPost, Path: "/v1/streams/{stream}",
		Summary:      "Append events to a stream, atomically",
		Description:  "All events or none. `expect` is the optimistic-concurrency condition: a mismatch is 409 wrong_expected_version. An append whose event ids were written at the same place returns the first result (a safe retry).",
		Tags:         []string{"log"},
		MaxBodyBytes: s.opts.MaxBodyBytes,
		Errors:       []int{400, 409, 413, 422},
	}, config.ScopeAppend), s.append)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "read-stream", Method: http.MethodGet, Path: "/v1/streams/{stream}",
		Summary: "Read a stream", Tags: []string{"log"}, Errors: []int{400, 404},
	}, config.ScopeRead), s.readStream)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "read-all", Method: http.MethodGet, Path: "/v1/events",
		Summary: "Read the whole log in position order", Tags: []string{"log"}, Errors: []int{400},
	}, config.ScopeRead), s.readAll)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "head", Method: http.MethodGet, Path: "/v1/head",
		Summary: "The position of the last event", Tags: []string{"log"},
	}, config.ScopeRead), s.head)
	s.registerSubscribe()
	s.registerCloudEvents()
	s.registerExamples()
	s.registerProjections()
	s.registerJobs()
	s.registerRules()
	huma.Register(s.api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz",
		Summary: "The process is up", Tags: []string{"operations"},
	}, func(ctx context.Context, _ *struct{}) (*statusOutput, error) {
		return &statusOutput{Body: healthStatus{Status: "ok"}}, nil
	})
	huma.Register(s.api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz",
		Summary: "The store answers", Tags: []string{"operations"}, Errors: []int{503},
	}, func(ctx context.Context, _ *struct{}) (*statusOutput, error) {
		if _, err := s.opts.Store.Head(ctx); err != nil {
			return nil, s.fail(ctx, err)
		}
		return &statusOutput{Body: healthStatus{Status: "ready"}}, nil
	})
}

type healthStatus struct {
	Status string `json:"status"`
}

type statusOutput struct{ Body healthStatus }

type appendInput struct {
	Stream string `path:"stream"`
	Expect string `query:"expect" default:"any" doc:"any, no-stream, stream-exists, or the stream's version (a number)"`
	Body   api.AppendRequest
}

type appendOutput struct{ Body api.AppendResult }

func (s *Server) append(ctx context.Context, in *appendInput) (*appendOutput, error) {
	if err := event.ValidateStream(in.Stream); err != nil {
		return nil, api.NewError(api.CodeInvalidStream, "%v", err)
	}
	if err := stream(ctx, in.Stream); err != nil {
		return nil, err
	}
	expected, err := store.ParseExpectedVersion(in.Expect)
	if err != nil {
		return nil, api.NewError(api.CodeBadRequest, "expect: %v", err)
	}
	evs := make([]event.Event, len(in.Body.Events))
	for i := range in.Body.Events {
		if evs[i], err = in.Body.Events[i].ToEvent(); err != nil {
			return nil, api.NewError(api.CodeInvalidEvent, "events[%d]: %v", i, err)
		}
	}
	res, err := s.opts.Store.Append(ctx, in.Stream, expected, evs...)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.metrics.events.Add(float64(len(evs)))
	return &appendOutput{Body: api.AppendResult{Version: res.Version, FirstPosition: res.FirstPosition, LastPosition: res.LastPosition}}, nil
}

type readStreamInput struct {
	Stream    string `path:"stream"`
	From      uint64 `query:"from" doc:"the first version to read (default: the first, or the last when backwards)"`
	Backwards bool   `query:"backwards"`
	Limit     int    `query:"limit" default:"100" minimum:"1" maximum:"10000"`
}

type recordsOutput struct{ Body api.Records }

func (s *Server) readStream(ctx context.Context, in *readStreamInput) (*recordsOutput, error) {
	if err := event.ValidateStream(in.Stream); err != nil {
		return nil, api.NewError(api.CodeInvalidStream, "%v", err)
	}
	if err := stream(ctx, in.Stream); err != nil {
		return nil, err
	}
	out := api.Records{Records: []api.Record{}}
	// One more than asked says whether there is a next page.
	for rec, err := range s.opts.Store.ReadStream(ctx, in.Stream, store.ReadStreamOptions{From: in.From, Backwards: in.Backwards, Limit: in.Limit + 1}) {
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		if len(out.Records) == in.Limit {
			out.Next = rec.Version
			break
		}
		out.Records = append(out.Records, api.FromRecord(&rec))
	}
	return &recordsOutput{Body: out}, nil
}

// FilterParams are the filter's query parameters (exported: huma reads
// only exported embedded structs).
type FilterParams struct {
	Types        []string `query:"type,explode" doc:"only events of these types (repeat the parameter: type=a&type=b)"`
	StreamPrefix string   `query:"stream_prefix" doc:"only events of streams whose names start so"`
}

type readAllInput struct {
	After uint64 `query:"after" doc:"read from the position after this one (0: from the start)"`
	Limit int    `query:"limit" default:"100" minimum:"1" maximum:"10000"`
	FilterParams
}

func (s *Server) readAll(ctx context.Context, in *readAllInput) (*recordsOutput, error) {
	if err := prefix(ctx, in.StreamPrefix); err != nil {
		return nil, err
	}
	out := api.Records{Records: []api.Record{}}
	opts := store.ReadAllOptions{After: in.After, Limit: in.Limit, Filter: store.Filter{Types: in.Types, StreamPrefix: in.StreamPrefix}}
	var last uint64
	for rec, err := range s.opts.Store.ReadAll(ctx, opts) {
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		out.Records = append(out.Records, api.FromRecord(&rec))
		last = rec.Position
	}
	if len(out.Records) == in.Limit {
		out.Next = last
	}
	return &recordsOutput{Body: out}, nil
}

type headOutput struct {
	Body struct {
		Head uint64 `json:"head" doc:"the position of the last event (0: the log is empty)"`
	}
}

func (s *Server) head(ctx context.Context, _ *struct{}) (*headOutput, error) {
	h, err := s.opts.Store.Head(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &headOutput{}
	out.Body.Head = h
	return out, nil
}

type subscribeInput struct {
	After       uint64 `query:"after" doc:"deliver events after this position (0: from the start)"`
	LastEventID string `header:"Last-Event-ID" doc:"set by an EventSource that reconnects: the position of the last event it got, which wins over after"`
	Format      string `query:"format" enum:"record,cloudevents" default:"record" doc:"record: each event as /v1/events gives it; cloudevents: as a structured-mode CloudEvent 1.0"`
	FilterParams
}

func (s *Server) registerSubscribe() {
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "subscribe", Method: http.MethodGet, Path: "/v1/subscribe",
		Summary:     "Follow the log live, over Server-Sent Events",
		Description: "History first, then live events as they are appended, with no gap and no duplicate. Each SSE event's id is the record's position and its data the record (as /v1/events returns it); a client that reconnects with Last-Event-ID resumes after it.",
		Tags:        []string{"log"},
		Errors:      []int{400},
		Responses: map[string]*huma.Response{"200": {
			Description: "A stream of records",
			Content:     map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: huma.TypeString}}},
		}},
	}, config.ScopeRead), s.subscribe)
}

func (s *Server) subscribe(ctx context.Context, in *subscribeInput) (*huma.StreamResponse, error) {
	if err := prefix(ctx, in.StreamPrefix); err != nil {
		return nil, err
	}
	after, err := resumeAfter(in.After, in.LastEventID)
	if err != nil {
		return nil, err
	}
	encode := func(rec *event.Record) ([]byte, error) { return json.Marshal(api.FromRecord(rec)) }
	if in.Format == "cloudevents" {
		encode = func(rec *event.Record) ([]byte, error) { return json.Marshal(toCloudEvent(rec)) }
	}
	return s.sse(store.SubscribeOptions{After: after, Filter: store.Filter{Types: in.Types, StreamPrefix: in.StreamPrefix}}, encode), nil
}

// resumeAfter is where a subscription starts: after the Last-Event-ID an
// EventSource sends when it reconnects, else after the after parameter.
func resumeAfter(after uint64, lastEventID string) (uint64, error) {
	if lastEventID == "" {
		return after, nil
	}
	p, err := strconv.ParseUint(lastEventID, 10, 64)
	if err != nil {
		return 0, api.NewError(api.CodeBadRequest, "Last-Event-ID %q: want a position", lastEventID)
	}
	return p, nil
}

// sse streams a subscription as Server-Sent Events: each record's
// position is the event's id, encode gives its data (nil: skip the
// record). It ends when the
// client goes, the server closes, or the store fails (an error event).
func (s *Server) sse(opts store.SubscribeOptions, encode func(*event.Record) ([]byte, error)) *huma.StreamResponse {
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		ctx, cancel := context.WithCancel(hctx.Context())
		defer cancel()
		stop := context.AfterFunc(s.done, cancel)
		defer stop()
		s.metrics.subs.Inc()
		defer s.metrics.subs.Dec()
		delivered := new(atomic.Uint64) // for the lag metric
		delivered.Store(opts.After)
		s.metrics.following.Store(delivered, struct{}{})
		defer s.metrics.following.Delete(delivered)
		hctx.SetHeader("Content-Type", "text/event-stream")
		hctx.SetHeader("Cache-Control", "no-store")
		hctx.SetStatus(http.StatusOK)
		w := bufio.NewWriterSize(hctx.BodyWriter(), 32<<10)
		rw, _ := hctx.BodyWriter().(http.ResponseWriter) // humago's is
		send := func() bool {
			return w.Flush() == nil && (rw == nil || http.NewResponseController(rw).Flush() == nil)
		}
		if !send() { // the headers: the client knows it is subscribed
			return
		}
		for rec, err := range s.opts.Store.Subscribe(ctx, opts) {
			if err != nil {
				if ctx.Err() == nil {
					b, _ := json.Marshal(api.FromError(err))
					w.WriteString("event: error\ndata: ")
					w.Write(b)
					w.WriteString("\n\n")
					send()
				}
				return
			}
			b, err := encode(&rec)
			if err != nil {
				return
			}
			if b == nil {
				continue // not for this subscription
			}
			w.WriteString("id: ")
			w.WriteString(strconv.FormatUint(rec.Position, 10))
			w.WriteString("\ndata: ")
			w.Write(b)
			w.WriteString("\n\n")
			if !send() {
				return
			}
			delivered.Store(rec.Position)
		}
	}}
}
