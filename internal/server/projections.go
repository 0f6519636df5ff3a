package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/projection"
)

// Read models over HTTP: the projections' status, and read-only SQL over
// their serving versions, optionally waiting until they reflect a position
// (read-your-writes). A projection whose first version is still building
// answers 503 with its progress and a Retry-After.

func (s *Server) registerProjections() {
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "list-projections", Method: http.MethodGet, Path: "/v1/projections",
		Summary: "The projections: serving version, state, position, lag, and any build in progress",
		Tags:    []string{"read models"}, Errors: []int{404},
	}, config.ScopeRead), s.listProjections)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "projection-status", Method: http.MethodGet, Path: "/v1/projections/{name}",
		Summary: "A projection's status", Tags: []string{"read models"}, Errors: []int{404},
	}, config.ScopeRead), s.projectionStatus)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "apply-projection", Method: http.MethodPut, Path: "/v1/projections/{name}",
		Summary:       "Add or change a declarative projection",
		Description:   "The body is the projection's YAML (as strata projection apply reads; its name must be the path's). A new projection builds its first version (queries about it answer 503 projection_building until it serves); a changed one builds a new version beside the serving one, which answers queries until the new one takes over. Answers 202 once the build has started.",
		Tags:          []string{"read models"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  1 << 20,
		Errors:        []int{400, 404},
	}, config.ScopeAdmin), s.applyProjection)
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "rebuild-projection", Method: http.MethodPost, Path: "/v1/projections/{name}/rebuild",
		Summary:       "Rebuild a projection during live traffic",
		Description:   "Builds a new version beside the serving one (which keeps answering queries), replaying the log in parallel, catches it up live and switches queries to it in one step. Answers 202 once the build has started; its progress (position, until, rate, ETA) is in the projection's status under building.",
		Tags:          []string{"read models"},
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{404, 409},
	}, config.ScopeAdmin), s.rebuildProjection)
	for _, op := range []struct {
		id, path, summary string
		pause             bool
	}{
		{"pause-projection", "/v1/projections/{name}/pause", "Pause a projection's serving version (queries go on answering at its position)", true},
		{"resume-projection", "/v1/projections/{name}/resume", "Resume a paused projection, or retry a failed one", false},
	} {
		huma.Register(s.api, scoped(huma.Operation{
			OperationID: op.id, Method: http.MethodPost, Path: op.path, Summary: op.summary,
			Tags: []string{"read models"}, Errors: []int{404},
		}, config.ScopeAdmin), func(ctx context.Context, in *projectionInput) (*projectionOutput, error) {
			if s.opts.Shared != nil {
				return s.steerShared(ctx, in.Name, func() error { return s.opts.Shared.SetPaused(ctx, in.Name, op.pause) })
			}
			return s.steer(ctx, in.Name, func(db *sql.DB) error { return projection.SetPaused(ctx, db, in.Name, op.pause) })
		})
	}
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "skip-projection", Method: http.MethodPost, Path: "/v1/projections/{name}/skip",
		Summary: "Move a failed projection past the event it failed on (recorded with the reason)",
		Tags:    []string{"read models"}, Errors: []int{400, 404},
	}, config.ScopeAdmin), func(ctx context.Context, in *skipInput) (*projectionOutput, error) {
		if s.opts.Shared != nil {
			return s.steerShared(ctx, in.Name, func() error { return s.opts.Shared.Skip(ctx, in.Name, in.Body.Reason) })
		}
		return s.steer(ctx, in.Name, func(db *sql.DB) error { return projection.SkipFailed(ctx, db, in.Name, in.Body.Reason, time.Now()) })
	})
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "query", Method: http.MethodPost, Path: "/v1/query",
		Summary:     "Read-only SQL over the read models",
		Description: "Runs one read-only SQL statement over the serving versions of every projection (SQLite; tables by their names; on a cluster, strata serve --cluster, PostgreSQL), in one snapshot. With min_position, waits (up to timeout_ms) until every projection reflects that log position, the position an append or a command returned: read-your-writes. A projection still building its first version answers 503 projection_building with its progress and a Retry-After.",
		Tags:        []string{"read models"}, Errors: []int{400, 404, 503},
	}, config.ScopeRead), s.query)
}

// SharedReadSide is the read side of a cluster (internal/cluster.ReadSide):
// projections stored in and running against PostgreSQL, each in one or
// more partitions spread over the nodes.
type SharedReadSide interface {
	List(ctx context.Context, head uint64) ([]readmodels.Status, error)
	Status(ctx context.Context, name string, head uint64) (readmodels.Status, error)
	Apply(ctx context.Context, p *projection.Declarative, src []byte) error
	Rebuild(ctx context.Context, name string) error
	SetPaused(ctx context.Context, name string, paused bool) error
	Skip(ctx context.Context, name, reason string) error
	// Query runs query if every projection has applied pos, reporting
	// whether they had and the lowest position they reflect.
	Query(ctx context.Context, pos uint64, query string, args []any, fn func(*sql.Rows) error) (bool, uint64, error)
}

func (s *Server) catalog() (*projection.Catalog, error) {
	if s.opts.ReadModels == nil {
		return nil, api.NewError(api.CodeNotFound, "this server has no read models")
	}
	return s.opts.ReadModels, nil
}

type projectionsOutput struct {
	Body struct {
		Projections []readmodels.Status `json:"projections"`
	}
}

func (s *Server) listProjections(ctx context.Context, _ *struct{}) (*projectionsOutput, error) {
	if s.opts.Shared != nil {
		head, err := s.opts.Store.Head(ctx)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		list, err := s.opts.Shared.List(ctx, head)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		out := &projectionsOutput{}
		out.Body.Projections = list
		return out, nil
	}
	cat, err := s.catalog()
	if err != nil {
		return nil, err
	}
	list, err := readmodels.List(ctx, cat)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	head, err := s.opts.Store.Head(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &projectionsOutput{}
	out.Body.Projections = []readmodels.Status{}
	for _, l := range list {
		st, err := readmodels.ReadStatus(ctx, cat, s.opts.Store, l.Name, head)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		out.Body.Projections = append(out.Body.Projections, st)
	}
	return out, nil
}

type projectionInput struct {
	Name string `path:"name"`
}

type projectionOutput struct{ Body readmodels.Status }

func (s *Server) projectionStatus(ctx context.Context, in *projectionInput) (*projectionOutput, error) {
	var cat *projection.Catalog
	if s.opts.Shared == nil {
		var err error
		if cat, err = s.catalog(); err != nil {
			return nil, err
		}
	}
	head, err := s.opts.Store.Head(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	var st readmodels.Status
	if s.opts.Shared != nil {
		st, err = s.opts.Shared.Status(ctx, in.Name, head)
	} else {
		st, err = readmodels.ReadStatus(ctx, cat, s.opts.Store, in.Name, head)
	}
	if errors.Is(err, projection.ErrUnknownProjection) {
		return nil, api.NewError(api.CodeNotFound, "%v", err)
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &projectionOutput{Body: st}, nil
}

type applyProjectionInput struct {
	Name    string `path:"name"`
	RawBody []byte `contentType:"application/yaml"`
}

func (s *Server) applyProjection(ctx context.Context, in *applyProjectionInput) (*projectionOutput, error) {
	if s.opts.Projections == nil && s.opts.Shared == nil {
		return nil, api.NewError(api.CodeNotFound, "this server runs no projections")
	}
	src := bytes.Clone(in.RawBody) // huma reuses the buffer after the call
	p, err := projection.ParseSpec(src)
	if err != nil {
		return nil, api.NewError(api.CodeInvalidBody, "%v", err)
	}
	if p.Name() != in.Name {
		return nil, api.NewError(api.CodeBadRequest, "the projection is named %q, the path says %q", p.Name(), in.Name)
	}
	if s.opts.Shared != nil {
		err = s.opts.Shared.Apply(ctx, p, src)
	} else {
		err = s.opts.Projections.Apply(ctx, p, src)
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	// The first version may not be registered yet: report what there is.
	st, err := s.projectionStatus(ctx, &projectionInput{Name: in.Name})
	if err != nil {
		out := &projectionOutput{}
		out.Body.Name, out.Body.State = in.Name, readmodels.StateBuilding
		return out, nil
	}
	return st, nil
}

func (s *Server) rebuildProjection(ctx context.Context, in *projectionInput) (*projectionOutput, error) {
	if s.opts.Shared != nil {
		if err := s.opts.Shared.Rebuild(ctx, in.Name); errors.Is(err, projection.ErrUnknownProjection) {
			return nil, api.NewError(api.CodeNotFound, "%v", err)
		} else if err != nil {
			return nil, s.fail(ctx, err)
		}
		return s.projectionStatus(ctx, in)
	}
	if s.opts.Projections == nil {
		return nil, api.NewError(api.CodeNotFound, "this server runs no projections")
	}
	err := s.opts.Projections.Rebuild(ctx, in.Name)
	switch {
	case errors.Is(err, readmodels.ErrNotSupervised):
		return nil, api.NewError(api.CodeNotFound, "%v", err)
	case errors.Is(err, readmodels.ErrPaused):
		return nil, api.NewError(api.CodeProjectionPaused, "%v", err)
	case err != nil:
		return nil, s.fail(ctx, err)
	}
	return s.projectionStatus(ctx, in)
}

type skipInput struct {
	Name string `path:"name"`
	Body struct {
		Reason string `json:"reason" minLength:"1" doc:"why the event is skipped (recorded)"`
	}
}

// steer changes a projection's serving version's runner state and answers
// with its status.
func (s *Server) steer(ctx context.Context, name string, do func(*sql.DB) error) (*projectionOutput, error) {
	cat, err := s.catalog()
	if err != nil {
		return nil, err
	}
	db, err := readmodels.ServingDB(ctx, cat, name)
	if errors.Is(err, projection.ErrUnknownProjection) {
		return nil, api.NewError(api.CodeNotFound, "%v", err)
	}
	if err != nil {
		return nil, api.NewError(api.CodeBadRequest, "%v", err)
	}
	defer db.Close()
	if err := do(db); err != nil {
		return nil, api.NewError(api.CodeBadRequest, "%v", err)
	}
	return s.projectionStatus(ctx, &projectionInput{Name: name})
}

// steerShared is steer for a cluster's projection.
func (s *Server) steerShared(ctx context.Context, name string, do func() error) (*projectionOutput, error) {
	err := do()
	switch {
	case errors.Is(err, projection.ErrUnknownProjection):
		return nil, api.NewError(api.CodeNotFound, "%v", err)
	case err != nil:
		return nil, api.NewError(api.CodeBadRequest, "%v", err)
	}
	return s.projectionStatus(ctx, &projectionInput{Name: name})
}

type queryInput struct {
	Body struct {
		SQL         string `json:"sql" minLength:"1" doc:"one read-only SQL statement (SQLite; PostgreSQL on a cluster)"`
		Args        []any  `json:"args,omitempty" doc:"values for its parameters (? in SQLite, $1, $2, … in PostgreSQL)"`
		MinPosition uint64 `json:"min_position,omitempty" doc:"wait until every projection reflects this log position"`
		TimeoutMS   int    `json:"timeout_ms,omitempty" minimum:"0" maximum:"60000" doc:"how long to wait for min_position (default 5000)"`
	}
}

type queryOutput struct {
	Body struct {
		Columns  []string `json:"columns"`
		Rows     [][]any  `json:"rows"`
		Reflects uint64   `json:"reflects" doc:"the lowest position the projections reflected in the query's snapshot"`
	}
}

// maxQueryRows bounds an answer: a query is for reading a read model, not
// for dumping it.
const maxQueryRows = 100_000

func (s *Server) query(ctx context.Context, in *queryInput) (*queryOutput, error) {
	var cat *projection.Catalog
	if s.opts.Shared == nil {
		var err error
		if cat, err = s.catalog(); err != nil {
			return nil, err
		}
	}
	timeout := 5 * time.Second
	if in.Body.TimeoutMS > 0 {
		timeout = time.Duration(in.Body.TimeoutMS) * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	out := &queryOutput{}
	for {
		var reached bool
		var low uint64
		var err error
		if s.opts.Shared != nil {
			reached, low, err = s.opts.Shared.Query(ctx, in.Body.MinPosition, in.Body.SQL, in.Body.Args, func(rows *sql.Rows) error {
				return scanRows(rows, out)
			})
			out.Body.Reflects = low
		} else {
			reached, low, err = readmodels.QueryAtLeast(ctx, cat, in.Body.MinPosition, func(q *projection.QueryConn, reflects uint64) error {
				out.Body.Reflects = reflects
				return runSQL(ctx, q, in.Body.SQL, in.Body.Args, out)
			})
		}
		var be *projection.BuildingError
		switch {
		case errors.As(err, &be):
			return nil, buildingError(be)
		case err != nil:
			return nil, api.NewError(api.CodeBadRequest, "%v", err)
		case reached:
			return out, nil
		case time.Now().After(deadline):
			e := api.NewError(api.CodeNotCaughtUp, "the read models reflect position %d, not yet %d, after %v", low, in.Body.MinPosition, timeout)
			return nil, withRetryAfter(e, time.Second)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func runSQL(ctx context.Context, q *projection.QueryConn, query string, args []any, out *queryOutput) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return q.Explain(err)
	}
	defer rows.Close()
	return q.Explain(scanRows(rows, out))
}

// scanRows reads a query's answer into out.
func scanRows(rows *sql.Rows, out *queryOutput) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	out.Body.Columns, out.Body.Rows = cols, [][]any{}
	for rows.Next() {
		if len(out.Body.Rows) == maxQueryRows {
			return fmt.Errorf("the answer has more than %d rows: narrow the query (LIMIT)", maxQueryRows)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		out.Body.Rows = append(out.Body.Rows, vals)
	}
	return rows.Err()
}

// buildingError is the 503 a query about a building projection gets.
func buildingError(be *projection.BuildingError) error {
	e := api.NewError(api.CodeProjectionBuilding, "%v", be)
	b := readmodels.BuildingOf(be.Version)
	e.Building = &api.BuildProgress{Projection: be.Version.Projection, Version: b.Version, Position: b.Position, Until: b.Until, Rate: b.Rate, ETASeconds: b.ETASeconds}
	retry := time.Second
	if b.ETASeconds > 0 {
		retry = time.Duration(math.Min(b.ETASeconds, 60) * float64(time.Second))
	}
	return withRetryAfter(e, retry)
}

// retryAfter is an API error sent with a Retry-After header.
type retryAfter struct {
	e     *api.Error
	after time.Duration
}

func withRetryAfter(e *api.Error, d time.Duration) error { return &retryAfter{e, d} }

func (r *retryAfter) Error() string                { return r.e.Error() }
func (r *retryAfter) GetStatus() int               { return r.e.Status }
func (r *retryAfter) Unwrap() error                { return r.e }
func (r *retryAfter) MarshalJSON() ([]byte, error) { return json.Marshal(r.e) }

// GetHeaders gives huma the header to send with the error.
func (r *retryAfter) GetHeaders() http.Header {
	return http.Header{"Retry-After": {strconv.Itoa(max(1, int(math.Ceil(r.after.Seconds()))))}}
}
