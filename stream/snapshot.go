package stream

import (
	"bytes"
	"cmp"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// A snapshot is the engine's whole state: watermark, counters and every
// key's windows, in the order of their timers, so that a restored engine
// fires in the same order the original would have. Running aggregates are
// not stored: they are rebuilt from the panes or events on the next firing
// and give the same results. Values and accumulators go through
// encoding/gob, so their types must be encodable by it (exported fields, or
// GobEncoder/BinaryMarshaler).
type snapshot[V, A any] struct {
	Format    int
	Config    Config
	Watermark int64
	Stats     Stats
	Aligned   []alignedSnap[A]
	Sessions  []sessionSnap[A]
	Lookback  []lookbackSnap[V]
}

// snapshotFormat 3: lookback keys count only their windows' firings again.
const snapshotFormat = 3

type paneSnap[A any] struct {
	Start int64
	Acc   A
}

type alignedSnap[A any] struct {
	Key   string
	Panes []paneSnap[A]
	Fired int64
	Fires map[int64]uint32
}

type sessionWinSnap[A any] struct {
	Start, End int64
	Acc        A
	Has, Due   bool
	Firing     uint32
}

type sessionSnap[A any] struct {
	Key      string
	Sessions []sessionWinSnap[A]
}

type elemSnap[V any] struct {
	T int64
	V V
}

type lookbackSnap[V any] struct {
	Key     string
	Elems   []elemSnap[V]
	Pending int
	Fires   []map[int64]uint32 // per span
}

// ErrSnapshot is wrapped by every error restoring a snapshot.
var ErrSnapshot = errors.New("stream: bad snapshot")

// byTimer orders keys by their pending timer.
func byTimer[K any](keys []K, timer func(K) (int64, uint64)) {
	slices.SortFunc(keys, func(a, b K) int {
		at, as := timer(a)
		bt, bs := timer(b)
		return cmp.Or(cmp.Compare(at, bt), cmp.Compare(as, bs))
	})
}

// Snapshot encodes the engine's state. Take it between inputs, after the
// results of the last one have been handled (Ready is not part of it).
func (e *Engine[V, A, R]) Snapshot() ([]byte, error) {
	return e.capture(false).Bytes()
}

// Captured is an engine's state copied for a snapshot, to encode later.
type Captured[V, A any] struct{ s snapshot[V, A] }

// Capture copies a Lookback engine's state for a snapshot (as Snapshot,
// between inputs), leaving the encoding (Bytes), the costlier part, for
// later: the engine may go on meanwhile. Only Lookback engines: their
// state is events and counts; other kinds keep accumulators, which may
// be shared with the live engine (ErrProbe otherwise).
func (e *Engine[V, A, R]) Capture() (*Captured[V, A], error) {
	if _, ok := e.op.(*lookback[V, A, R]); !ok {
		return nil, fmt.Errorf("%w: %v", ErrProbe, e.cfg.Kind)
	}
	return e.capture(true), nil
}

// Bytes encodes the captured state: what Snapshot returns.
func (c *Captured[V, A]) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&c.s); err != nil {
		return nil, fmt.Errorf("stream: snapshot: %w", err)
	}
	return b.Bytes(), nil
}

// capture copies the state; owned says the copy must share nothing the
// engine changes later (a lookback key's firing counts are cloned).
func (e *Engine[V, A, R]) capture(owned bool) *Captured[V, A] {
	s := snapshot[V, A]{Format: snapshotFormat, Config: e.cfg, Watermark: e.wm, Stats: e.stats}
	switch op := e.op.(type) {
	case *aligned[V, A, R]:
		ks := mapValues(op.keys)
		byTimer(ks, func(k *alignedKey[A]) (int64, uint64) { return k.timer.at, k.timer.seq })
		for _, k := range ks {
			ps := make([]paneSnap[A], len(k.panes))
			for i, p := range k.panes {
				ps[i] = paneSnap[A]{p.start, p.acc}
			}
			s.Aligned = append(s.Aligned, alignedSnap[A]{Key: k.key, Panes: ps, Fired: k.fired, Fires: k.fires})
		}
	case *sessions[V, A, R]:
		ks := mapValues(op.keys)
		byTimer(ks, func(k *sessionKey[A]) (int64, uint64) { return k.timer.at, k.timer.seq })
		for _, k := range ks {
			ws := make([]sessionWinSnap[A], len(k.s))
			for i, m := range k.s {
				ws[i] = sessionWinSnap[A]{m.w.Start, m.w.End, m.acc, m.has, m.due, m.firing}
			}
			s.Sessions = append(s.Sessions, sessionSnap[A]{Key: k.key, Sessions: ws})
		}
	case *lookback[V, A, R]:
		ks := mapValues(op.keys)
		// Restored keys re-arm their cleanup checks in this order too; a
		// check only forgets, so its order does not show in the output.
		byTimer(ks, func(k *lookbackKey[V, A]) (int64, uint64) {
			if k.fire.armed {
				return k.fire.at, k.fire.seq
			}
			return maxWatermark, 0
		})
		for _, k := range ks {
			es := make([]elemSnap[V], 0, k.elems.len())
			for i := k.elems.head; i < k.elems.tail; i++ {
				x := k.elems.at(i)
				es = append(es, elemSnap[V]{x.t, x.v})
			}
			fires := make([]map[int64]uint32, len(k.spans))
			for i := range k.spans {
				fires[i] = k.spans[i].fires
				if owned {
					fires[i] = maps.Clone(fires[i])
				}
			}
			s.Lookback = append(s.Lookback, lookbackSnap[V]{Key: k.key, Elems: es, Pending: k.pending - k.elems.head, Fires: fires})
		}
	}
	return &Captured[V, A]{s}
}

// Restore returns an engine in the state a snapshot recorded. cfg and agg
// must be those of the engine that took it (the configuration is checked).
func Restore[V, A, R any](cfg Config, agg Aggregator[V, A, R], data []byte) (*Engine[V, A, R], error) {
	e, err := New(cfg, agg)
	if err != nil {
		return nil, err
	}
	var s snapshot[V, A]
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	if s.Format != snapshotFormat {
		return nil, fmt.Errorf("%w: format %d, this build reads %d", ErrSnapshot, s.Format, snapshotFormat)
	}
	if !s.Config.Equal(cfg) {
		return nil, fmt.Errorf("%w: taken with %+v, restoring with %+v", ErrSnapshot, s.Config, cfg)
	}
	e.wm, e.stats = s.Watermark, s.Stats
	switch op := e.op.(type) {
	case *aligned[V, A, R]:
		for _, ks := range s.Aligned {
			if len(ks.Panes) == 0 {
				return nil, fmt.Errorf("%w: key %q has no panes", ErrSnapshot, ks.Key)
			}
			k := &alignedKey[A]{key: ks.Key, fired: ks.Fired, fires: ks.Fires, win: e.newSwag(), dirty: true}
			for _, p := range ks.Panes {
				k.panes = append(k.panes, pane[A]{p.Start, p.Acc})
			}
			op.keys[k.key] = k
			op.schedule(k)
		}
	case *sessions[V, A, R]:
		for _, ks := range s.Sessions {
			if len(ks.Sessions) == 0 {
				return nil, fmt.Errorf("%w: key %q has no sessions", ErrSnapshot, ks.Key)
			}
			k := &sessionKey[A]{key: ks.Key}
			for _, m := range ks.Sessions {
				k.s = append(k.s, session[A]{Window{m.Start, m.End}, m.Acc, m.Has, m.Due, m.Firing})
			}
			op.keys[k.key] = k
			op.schedule(k)
		}
	case *lookback[V, A, R]:
		for _, ks := range s.Lookback {
			if len(ks.Elems) == 0 || ks.Pending < 0 || ks.Pending > len(ks.Elems) || len(ks.Fires) != len(op.spans) {
				return nil, fmt.Errorf("%w: key %q: %d events, %d fired, %d spans", ErrSnapshot, ks.Key, len(ks.Elems), ks.Pending, len(ks.Fires))
			}
			k := op.newKey(ks.Key)
			k.pending = ks.Pending
			for i := range k.spans {
				k.spans[i].fires = ks.Fires[i]
			}
			for _, x := range ks.Elems {
				k.elems.push(lbElem[V]{x.T, x.V})
				k.last = x.T
			}
			op.keys[k.key] = k
			op.schedule(k)
		}
	}
	return e, nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
