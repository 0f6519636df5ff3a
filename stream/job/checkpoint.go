package job

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/stratadb/strata/internal/atomicfile"
	"github.com/stratadb/strata/stream"
)

// checkpoint is a job's state at a barrier: every engine, the reader's
// position and watermark generator, and the sink's mark, written together
// in one file so that they can never disagree.
type checkpoint struct {
	Format        int
	Job           string
	Window        stream.Config
	MaxOutOfOrder int64
	Reader        readerState
	Engines       [][]byte
	SinkMark      []byte
	Results, Late uint64
}

const checkpointFormat = 1

func checkpointPath(dir, job string) string { return filepath.Join(dir, job+".checkpoint") }

// CheckpointStore keeps a job's checkpoint somewhere other than a file in
// Job.Dir: in PostgreSQL, so that whichever node runs the job next resumes
// it exactly.
type CheckpointStore interface {
	// LoadCheckpoint returns the saved checkpoint, nil if there is none.
	LoadCheckpoint(ctx context.Context) ([]byte, error)
	// SaveCheckpoint replaces it, atomically: a crash leaves the old one
	// or the new one, whole.
	SaveCheckpoint(ctx context.Context, data []byte) error
}

// DirCheckpoints is the CheckpointStore of job in dir (what Job.Dir
// means): dir/JOB.checkpoint.
func DirCheckpoints(dir, job string) CheckpointStore {
	return fileCheckpoints(checkpointPath(dir, job))
}

type fileCheckpoints string

func (f fileCheckpoints) LoadCheckpoint(context.Context) ([]byte, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (f fileCheckpoints) SaveCheckpoint(_ context.Context, data []byte) error {
	return atomicfile.Write(string(f), data)
}

// loadCheckpoint returns the job's checkpoint, or nil if it has none.
func loadCheckpoint(ctx context.Context, cps CheckpointStore, job string) (*checkpoint, error) {
	b, err := cps.LoadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job, err)
	}
	if b == nil {
		return nil, nil
	}
	var cp checkpoint
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&cp); err != nil {
		return nil, fmt.Errorf("%w: job %s: %w", ErrCheckpoint, job, err)
	}
	if cp.Format != checkpointFormat || cp.Job != job {
		return nil, fmt.Errorf("%w: job %s: format %d of job %q", ErrCheckpoint, job, cp.Format, cp.Job)
	}
	return &cp, nil
}

// saveCheckpoint replaces the job's checkpoint.
func saveCheckpoint(ctx context.Context, cps CheckpointStore, cp *checkpoint) error {
	cp.Format = checkpointFormat
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(cp); err != nil {
		return fmt.Errorf("job %s: checkpoint: %w", cp.Job, err)
	}
	if err := cps.SaveCheckpoint(ctx, b.Bytes()); err != nil {
		return fmt.Errorf("job %s: checkpoint: %w", cp.Job, err)
	}
	return nil
}
