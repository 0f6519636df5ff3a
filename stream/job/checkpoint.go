package job

import (
	"bytes"
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

// loadCheckpoint returns the job's checkpoint, or nil if it has none.
func loadCheckpoint(dir, job string) (*checkpoint, error) {
	b, err := os.ReadFile(checkpointPath(dir, job))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job, err)
	}
	var cp checkpoint
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&cp); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCheckpoint, checkpointPath(dir, job), err)
	}
	if cp.Format != checkpointFormat || cp.Job != job {
		return nil, fmt.Errorf("%w: %s: format %d of job %q", ErrCheckpoint, checkpointPath(dir, job), cp.Format, cp.Job)
	}
	return &cp, nil
}

// saveCheckpoint replaces the job's checkpoint atomically: a crash leaves
// the old one or the new one, whole.
func saveCheckpoint(dir string, cp *checkpoint) error {
	cp.Format = checkpointFormat
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(cp); err != nil {
		return fmt.Errorf("job %s: checkpoint: %w", cp.Job, err)
	}
	if err := atomicfile.Write(checkpointPath(dir, cp.Job), b.Bytes()); err != nil {
		return fmt.Errorf("job %s: checkpoint: %w", cp.Job, err)
	}
	return nil
}
