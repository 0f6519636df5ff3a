package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/stratadb/strata/internal/atomicfile"
	"github.com/stratadb/strata/internal/server"
	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/stream/job"
)

// jobs runs the windowed jobs applied to the data directory
// (DATA/jobs/NAME.yaml, their checkpoints beside them), following the log
// live until the server stops.
type jobs struct {
	dir string
	st  store.Store
	log *slog.Logger
	ctx context.Context
	wg  *sync.WaitGroup

	mu   sync.Mutex
	runs map[string]*jobRun
}

type jobRun struct {
	spec *job.Spec
	src  []byte
	mu   sync.Mutex
	last job.Progress
	err  error
}

// errJobExists: a job's checkpoint holds its windows, so a changed
// definition under the same name cannot resume from it.
var errJobExists = errors.New("a job of that name runs with another definition: apply the change under a new name")

func startJobs(ctx context.Context, wg *sync.WaitGroup, dir string, st store.Store, log *slog.Logger) (*jobs, error) {
	js := &jobs{dir: dir, st: st, log: log, ctx: ctx, wg: wg, runs: map[string]*jobRun{}}
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		spec, err := job.ParseSpec(strings.NewReader(string(src)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		js.start(spec, src)
	}
	return js, nil
}

func (js *jobs) start(spec *job.Spec, src []byte) {
	r := &jobRun{spec: spec, src: src}
	js.runs[spec.Name] = r
	js.wg.Go(func() {
		err := spec.Run(js.ctx, js.st, js.dir, func(p job.Progress) {
			r.mu.Lock()
			r.last = p
			r.mu.Unlock()
		})
		if err != nil && js.ctx.Err() == nil {
			js.log.Error("job stopped", "job", spec.Name, "err", err)
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
		}
	})
}

// ApplyJob stores and starts a job; the same definition again changes
// nothing.
func (js *jobs) ApplyJob(ctx context.Context, spec *job.Spec, src []byte) error {
	js.mu.Lock()
	defer js.mu.Unlock()
	if r, ok := js.runs[spec.Name]; ok {
		if string(r.src) == string(src) {
			return nil
		}
		return errJobExists
	}
	if err := atomicfile.Write(filepath.Join(js.dir, spec.Name+".yaml"), src); err != nil {
		return err
	}
	js.start(spec, src)
	return nil
}

// Jobs reports every job's last progress.
func (js *jobs) Jobs() []server.JobStatus {
	js.mu.Lock()
	defer js.mu.Unlock()
	var out []server.JobStatus
	for _, name := range slices.Sorted(maps.Keys(js.runs)) {
		r := js.runs[name]
		r.mu.Lock()
		st := server.JobStatus{Name: name, Output: r.spec.OutputStream(), Position: r.last.Position, Watermark: r.last.Watermark, Results: r.last.Results, Late: r.last.Late, Keys: r.last.Keys}
		if r.err != nil {
			st.Error = r.err.Error()
		}
		r.mu.Unlock()
		out = append(out, st)
	}
	return out
}
