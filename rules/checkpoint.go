package rules

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/internal/atomicfile"
	"github.com/stratadb/strata/stream"
)

// A checkpoint is the windows' state with the log position it covers, so
// that opening an Authorizer restores it and replays only the transactions
// recorded after it, instead of the whole history. It is only a shortcut:
// the log is the truth, and a checkpoint that does not match the rule set
// in force (or cannot be read) is ignored, the windows then rebuilt from
// the log.

const checkpointFormat = 4 // 4: marks, and no lateBy

type checkpointFile struct {
	Format   int
	Rules    []byte // the rule log (JSON) the windows were built for
	Shards   int
	Position uint64 // every transaction at or before it is counted
	MaxT     int64
	Marks    []mark
	State    []shardState
	// engines are the shards' engines captured, encoded into State by
	// save (unexported: gob leaves them out).
	engines [][]captured
}

// captured is an engine's state copied, to encode.
type captured interface{ Bytes() ([]byte, error) }

type shardState struct {
	Engines    [][]byte // stream snapshots, one per group
	LastDenied map[string]int64
	Recent     map[event.ID]uint64
	Order      []recentID
}

// fileCheckpoints is the CheckpointStore of Options.Dir.
type fileCheckpoints struct{ path string }

func (f fileCheckpoints) LoadCheckpoint(context.Context) ([]byte, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (f fileCheckpoints) SaveCheckpoint(_ context.Context, data []byte) error {
	return atomicfile.Write(f.path, data)
}

func dirCheckpoints(dir string) fileCheckpoints {
	return fileCheckpoints{filepath.Join(dir, "authorizer.checkpoint")}
}

func (l ruleLog) fingerprint() []byte {
	b, _ := json.Marshal(struct {
		Rules    []Rule
		Versions map[string]uint64
		Stream   uint64
	}{l.rules, l.versions, l.stream})
	return b
}

// Checkpoint writes the windows' state to Options.Dir or
// Options.Checkpoints (atomically: a crash leaves the previous checkpoint).
// Decisions are held back while the state is captured, not while it is
// encoded and saved. Without either it does nothing.
func (a *Authorizer) Checkpoint() error {
	if a.opts.Checkpoints == nil {
		return nil
	}
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	a.mu.Lock()
	cp, err := a.capture()
	a.mu.Unlock()
	if err != nil {
		return err
	}
	return a.save(cp)
}

// checkpoint captures and saves with a.saveMu and a.mu already held, in
// that order (a rule change).
func (a *Authorizer) checkpoint() error {
	cp, err := a.capture()
	if err != nil {
		return err
	}
	return a.save(cp)
}

// capture copies the state a checkpoint holds (a.mu held for writing: the
// state must not move under it): the engines' events and counts, and the
// small maps. Encoding them and writing come after, decisions going on.
func (a *Authorizer) capture() (*checkpointFile, error) {
	if e := a.lost.Load(); e != nil {
		return nil, *e // never make windows the log contradicts the starting point
	}
	cp := &checkpointFile{Format: checkpointFormat, Rules: a.log.fingerprint(), Shards: len(a.shards), Position: a.applied.Load(), MaxT: a.maxT.Load(), Marks: a.marks.snapshot()}
	for _, sh := range a.shards {
		cp.State = append(cp.State, shardState{LastDenied: maps.Clone(sh.lastDenied), Recent: maps.Clone(sh.recent), Order: slices.Clone(sh.order[sh.oldest:])})
		var es []captured
		for _, e := range sh.windows.engines {
			c, err := e.capture()
			if err != nil {
				return nil, fmt.Errorf("rules: checkpoint: %w", err)
			}
			es = append(es, c)
		}
		cp.engines = append(cp.engines, es)
	}
	a.sinceCheckpoint.Store(0)
	return cp, nil
}

// save encodes and writes a captured checkpoint (a.saveMu held, so that
// saves are in capture order).
func (a *Authorizer) save(cp *checkpointFile) error {
	for i, es := range cp.engines {
		for _, c := range es {
			b, err := c.Bytes()
			if err != nil {
				return fmt.Errorf("rules: checkpoint: %w", err)
			}
			cp.State[i].Engines = append(cp.State[i].Engines, b)
		}
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(cp); err != nil {
		return fmt.Errorf("rules: checkpoint: %w", err)
	}
	if err := a.opts.Checkpoints.SaveCheckpoint(context.Background(), b.Bytes()); err != nil {
		return fmt.Errorf("rules: checkpoint: %w", err)
	}
	return nil
}

// restore loads the checkpoint into freshly built shards, reporting the
// position it covers (0 and no error when there is none to use).
func (a *Authorizer) restore(shards []*shard) (uint64, int64, error) {
	if a.opts.Checkpoints == nil {
		return 0, noTime, nil
	}
	data, err := a.opts.Checkpoints.LoadCheckpoint(context.Background())
	if err != nil || data == nil {
		// None yet, or unreadable: the log has everything (and writing
		// the next checkpoint reports what is wrong with the place).
		return 0, noTime, nil
	}
	var cp checkpointFile
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&cp); err != nil ||
		cp.Format != checkpointFormat || !bytes.Equal(cp.Rules, a.log.fingerprint()) || cp.Shards != len(shards) || len(cp.State) != len(shards) {
		return 0, noTime, nil // another rule set, shard count or format: rebuild from the log
	}
	for i, sh := range shards {
		st := cp.State[i]
		if len(st.Engines) != len(sh.windows.engines) {
			return 0, noTime, nil
		}
		for g, e := range sh.windows.engines {
			if err := e.restore(st.Engines[g]); err != nil {
				return 0, 0, fmt.Errorf("rules: checkpoint: %w", err)
			}
		}
		if st.LastDenied != nil {
			sh.lastDenied = st.LastDenied
		}
		if st.Recent != nil {
			sh.recent = st.Recent
		}
		sh.order = st.Order
	}
	a.marks.reset(cp.Marks)
	return cp.Position, cp.MaxT, nil
}

func (g *engineOf[V, A, R]) capture() (captured, error) { return g.e.Capture() }

func (g *engineOf[V, A, R]) restore(data []byte) error {
	e, err := stream.Restore(g.e.Config(), g.agg, data)
	if err != nil {
		return err
	}
	g.e = e
	return nil
}

// Close writes a checkpoint (with Options.Dir), so that the next Open
// replays only what is recorded after it. The store stays open.
func (a *Authorizer) Close(ctx context.Context) error { return a.Checkpoint() }

// CheckpointError returns the error of the last periodic checkpoint that
// failed (nil if none did): Authorize does not fail for one, since the
// decision is recorded, but an operator wants to know (a full disk).
func (a *Authorizer) CheckpointError() error {
	if e := a.ckErr.Load(); e != nil {
		return *e
	}
	return nil
}
