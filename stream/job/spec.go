package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/stream"
)

// Spec is a windowed job as data (YAML), for a server to run without Go:
// the count and sum of a decimal field of the log's events, per key and
// window, appended as window.result events (window.late for events later
// than the allowed lateness) to an output stream, exactly once across
// restarts. docs/stream.md has an example.
type Spec struct {
	Name  string   `yaml:"name"`
	Types []string `yaml:"types"` // the event types read (all: none given)
	Key   string   `yaml:"key"`   // the data field that keys windows
	Value string   `yaml:"value"` // the decimal data field summed ("": count only)
	Time  string   `yaml:"time"`  // the event-time data field ("": record time)
	// Window is tumbling (size, offset), sliding (size, slide), session
	// (gap) or lookback (size).
	Window struct {
		Type   string   `yaml:"type"`
		Size   Duration `yaml:"size"`
		Slide  Duration `yaml:"slide"`
		Gap    Duration `yaml:"gap"`
		Offset Duration `yaml:"offset"`
	} `yaml:"window"`
	Lateness      Duration `yaml:"lateness"`
	MaxOutOfOrder Duration `yaml:"max_out_of_order"`
	// Output is the stream results are appended to (default job-NAME).
	Output string `yaml:"output"`
}

// Duration is a Go duration in YAML ("60s", "5m").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write it as 60s, 5m, 1h)", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d Duration) ms() int64 { return time.Duration(d).Milliseconds() }

// ErrSpec is wrapped by every error about a job spec.
var ErrSpec = errors.New("job: invalid spec")

var jobName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ParseSpec reads a job spec; unknown keys are errors, and errors name the
// field.
func ParseSpec(r io.Reader) (*Spec, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Spec) validate() error {
	switch {
	case !jobName.MatchString(s.Name):
		return fmt.Errorf("%w: name %q: letters, digits and _, at most 63", ErrSpec, s.Name)
	case s.Key == "":
		return fmt.Errorf("%w: key: the data field that keys the windows is required", ErrSpec)
	case s.MaxOutOfOrder < 0 || s.Lateness < 0:
		return fmt.Errorf("%w: lateness and max_out_of_order cannot be negative", ErrSpec)
	}
	if _, err := s.config(); err != nil {
		return fmt.Errorf("%w: window: %w", ErrSpec, err)
	}
	return nil
}

func (s *Spec) config() (stream.Config, error) {
	kind, err := stream.ParseKind(s.Window.Type)
	if err != nil {
		return stream.Config{}, err
	}
	cfg := stream.Config{Kind: kind, Size: s.Window.Size.ms(), Slide: s.Window.Slide.ms(), Gap: s.Window.Gap.ms(), Offset: s.Window.Offset.ms(), Lateness: s.Lateness.ms()}
	return cfg, cfg.Validate()
}

// OutputStream is where the job's results go.
func (s *Spec) OutputStream() string {
	if s.Output != "" {
		return s.Output
	}
	return "job-" + s.Name
}

// Run runs the job over st, following the log live until ctx ends, with
// its checkpoint in dir (a restart resumes from it; the output stream gets
// each result once).
func (s *Spec) Run(ctx context.Context, st store.Store, dir string, progress func(Progress)) error {
	return s.run(ctx, st, dir, nil, Share{}, progress)
}

// RunOptions are how RunWith runs a job.
type RunOptions struct {
	// Checkpoints keeps the checkpoint (PostgreSQL, say, so that another
	// node can take the job over where it stopped). Required.
	Checkpoints CheckpointStore
	// Share makes the run one share of the job (Job.Share): its outputs
	// go to the job's stream beside the other shares'.
	Share Share
	// Progress, when set, is told each interval's progress.
	Progress func(Progress)
}

// RunWith is Run with the checkpoint kept in opts.Checkpoints, and perhaps
// one share of the job only.
func (s *Spec) RunWith(ctx context.Context, st store.Store, opts RunOptions) error {
	if opts.Checkpoints == nil {
		return errors.New("job: RunWith needs a checkpoint store")
	}
	if sh := opts.Share; sh.Count < 0 || sh.Count > 1 && (sh.Index < 0 || sh.Index >= sh.Count) {
		return fmt.Errorf("job %s: share %d of %d does not exist", s.Name, sh.Index, sh.Count)
	}
	return s.run(ctx, st, "", opts.Checkpoints, opts.Share, opts.Progress)
}

func (s *Spec) run(ctx context.Context, st store.Store, dir string, cps CheckpointStore, share Share, progress func(Progress)) error {
	cfg, err := s.config()
	if err != nil {
		return err
	}
	j := &Job[num.Dec, stream.Moments, stream.Moments]{
		Name: s.Name, Window: cfg, Agg: stream.CountSum{}, MaxOutOfOrder: s.MaxOutOfOrder.ms(),
		Dir: dir, Checkpoints: cps, Share: share, Progress: progress,
		// A fixed count: a checkpoint is valid only for the partition
		// count that took it, and a server's core count may change.
		Partitions: 2,
	}
	src := &LogSource[num.Dec]{Store: st, Types: s.Types, Extract: Fields{Key: s.Key, Value: s.Value, Time: s.Time}.Record, Follow: true}
	sink := &StreamSink[num.Dec, stream.Moments]{Store: st, Stream: s.OutputStream(), Job: s.Name}
	return j.Run(ctx, src, sink)
}
