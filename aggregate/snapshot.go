package aggregate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Snapshot is an aggregate's state saved at a stream version, so that
// loading reads only the events after it. Snapshots are derived data: losing
// one costs a replay, never correctness.
type Snapshot struct {
	Stream   string    `json:"stream"`
	Version  uint64    `json:"version"`  // the stream version the state reflects
	Position uint64    `json:"position"` // global position of that version's event
	Time     time.Time `json:"time"`     // when it was taken
	// Fingerprint identifies the code that wrote State: the decider's
	// category and declared version and the shape of the state type. A
	// snapshot whose fingerprint differs from the running code's is ignored.
	Fingerprint string          `json:"fingerprint"`
	State       json.RawMessage `json:"state"`
}

// SnapshotStore keeps the latest snapshot of each stream.
type SnapshotStore interface {
	// LoadSnapshot returns the stream's snapshot; ok is false when there is none.
	LoadSnapshot(ctx context.Context, stream string) (s Snapshot, ok bool, err error)
	// SaveSnapshot replaces the stream's snapshot.
	SaveSnapshot(ctx context.Context, s Snapshot) error
}

// ErrSnapshotsClosed is returned by a closed snapshot store.
var ErrSnapshotsClosed = errors.New("aggregate: snapshot store closed")

// PebbleSnapshots is the embedded SnapshotStore: a Pebble database in its
// own directory (by convention "snapshots" in the data directory).
type PebbleSnapshots struct {
	db *pebble.DB
}

// OpenSnapshots opens (creating if needed) the snapshot store in dir.
func OpenSnapshots(dir string) (*PebbleSnapshots, error) {
	db, err := pebble.Open(filepath.Clean(dir), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		return nil, fmt.Errorf("aggregate: open snapshots: %w", err)
	}
	return &PebbleSnapshots{db: db}, nil
}

// Close closes the store.
func (p *PebbleSnapshots) Close() error { return p.db.Close() }

// LoadSnapshot implements SnapshotStore.
func (p *PebbleSnapshots) LoadSnapshot(ctx context.Context, stream string) (Snapshot, bool, error) {
	val, closer, err := p.db.Get([]byte(stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("aggregate: load snapshot of %s: %w", stream, err)
	}
	defer closer.Close()
	var s Snapshot
	if err := json.Unmarshal(val, &s); err != nil {
		// An unreadable snapshot is as good as none: the state is rebuilt.
		return Snapshot{}, false, nil
	}
	return s, true, nil
}

// SaveSnapshot implements SnapshotStore. It does not fsync: a snapshot lost
// in a crash is rebuilt from the events.
func (p *PebbleSnapshots) SaveSnapshot(ctx context.Context, s Snapshot) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("aggregate: encode snapshot of %s: %w", s.Stream, err)
	}
	if err := p.db.Set([]byte(s.Stream), b, pebble.NoSync); err != nil {
		return fmt.Errorf("aggregate: save snapshot of %s: %w", s.Stream, err)
	}
	return nil
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// fingerprint identifies the decider version and the state's shape.
func fingerprint[S, C, E any](d *Decider[S, C, E]) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/v%d/", d.Category, d.Version)
	describeType(&b, reflect.TypeFor[S](), map[reflect.Type]bool{})
	sum := sha256.Sum256([]byte(b.String()))
	return fmt.Sprintf("%s/v%d/%s", d.Category, d.Version, hex.EncodeToString(sum[:8]))
}

// describeType writes the parts of t that decide how its JSON reads back:
// kinds, element types, and struct fields with their tags.
func describeType(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	b.WriteString(t.PkgPath() + "." + t.Name() + ":" + t.Kind().String())
	if seen[t] {
		return
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		b.WriteString("[")
		describeType(b, t.Elem(), seen)
		b.WriteString("]")
	case reflect.Map:
		b.WriteString("[")
		describeType(b, t.Key(), seen)
		b.WriteString("]")
		describeType(b, t.Elem(), seen)
	case reflect.Struct:
		b.WriteString("{")
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(b, "%s %q ", f.Name, f.Tag)
			describeType(b, f.Type, seen)
			b.WriteString(";")
		}
		b.WriteString("}")
	}
}
