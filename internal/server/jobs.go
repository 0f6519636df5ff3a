package server

import (
	"bytes"
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/stream/job"
)

// JobStatus is a windowed job as GET /v1/jobs lists it.
type JobStatus struct {
	Name      string   `json:"name"`
	Output    string   `json:"output" doc:"the stream its window.result and window.late events go to"`
	Position  uint64   `json:"position" doc:"the last log position it has read and written out"`
	Watermark int64    `json:"watermark" doc:"its event-time watermark, epoch ms"`
	Results   uint64   `json:"results"`
	Late      uint64   `json:"late"`
	Keys      int      `json:"keys" doc:"keys holding window state"`
	Error     string   `json:"error,omitempty" doc:"why it stopped, if it did"`
	Nodes     []string `json:"nodes,omitempty" doc:"on a cluster, the nodes that run its shares (each reports the progress of its own)"`
}

// jobRunner is what the server needs of the jobs it runs.
type jobRunner interface {
	Jobs() []JobStatus
	ApplyJob(ctx context.Context, spec *job.Spec, src []byte) error
}

func (s *Server) registerJobs() {
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "list-jobs", Method: http.MethodGet, Path: "/v1/jobs",
		Summary: "The windowed jobs the server runs, with their progress", Tags: []string{"stream processing"}, Errors: []int{404},
	}, config.ScopeRead), func(ctx context.Context, _ *struct{}) (*jobsOutput, error) {
		if s.opts.Jobs == nil {
			return nil, api.NewError(api.CodeNotFound, "this server runs no jobs")
		}
		out := &jobsOutput{}
		out.Body.Jobs = append([]JobStatus{}, s.opts.Jobs.Jobs()...)
		return out, nil
	})
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "apply-job", Method: http.MethodPut, Path: "/v1/jobs/{name}",
		Summary:       "Start a windowed job (YAML), following the log live",
		Description:   "The count and sum of a decimal field per key and event-time window (tumbling, sliding, session, lookback), with watermarks and allowed lateness, appended to the stream job-NAME exactly once across restarts (docs/stream.md). The same definition again changes nothing; another definition under a running job's name is 409: apply it under a new name.",
		Tags:          []string{"stream processing"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  64 << 10,
		Errors:        []int{400, 404, 409, 422},
	}, config.ScopeAdmin), s.applyJob)
}

type jobsOutput struct {
	Body struct {
		Jobs []JobStatus `json:"jobs"`
	}
}

type applyJobInput struct {
	Name    string `path:"name"`
	RawBody []byte `contentType:"application/yaml"`
}

func (s *Server) applyJob(ctx context.Context, in *applyJobInput) (*jobsOutput, error) {
	if s.opts.Jobs == nil {
		return nil, api.NewError(api.CodeNotFound, "this server runs no jobs")
	}
	src := bytes.Clone(in.RawBody) // huma reuses the buffer after the call
	spec, err := job.ParseSpec(bytes.NewReader(src))
	if err != nil {
		return nil, api.NewError(api.CodeInvalidBody, "%v", err)
	}
	if spec.Name != in.Name {
		return nil, api.NewError(api.CodeBadRequest, "the job is named %q, the path says %q", spec.Name, in.Name)
	}
	if err := s.opts.Jobs.ApplyJob(ctx, spec, src); err != nil {
		return nil, api.NewError(api.CodeConflict, "job %s: %v", spec.Name, err)
	}
	out := &jobsOutput{}
	out.Body.Jobs = append([]JobStatus{}, s.opts.Jobs.Jobs()...)
	return out, nil
}
