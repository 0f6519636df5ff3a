package stream

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestRecoveryMatchesUninterruptedRun restores an engine from snapshots
// taken at random points and checks it emits exactly what an engine that
// never stopped emits, in the same order.
func TestRecoveryMatchesUninterruptedRun(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		kind := rapid.SampledFrom([]Kind{Tumbling, Sliding, Session, Lookback}).Draw(t, "kind")
		var cfg Config
		if kind == Session {
			cfg = Config{Kind: Session, Gap: rapid.Int64Range(1, 15).Draw(t, "gap"),
				Lateness: rapid.SampledFrom([]int64{0, 3, 20}).Draw(t, "lateness"),
				Mode:     rapid.SampledFrom([]Mode{Accumulating, Discarding}).Draw(t, "mode")}
		} else {
			cfg = drawConfig(t, kind)
		}
		if rapid.Bool().Draw(t, "max") {
			recoverRun(t, cfg, intMax{})
		} else {
			recoverRun(t, cfg, intSum{})
		}
	})
}

func recoverRun[A any](t *rapid.T, cfg Config, agg Aggregator[int64, A, int64]) {
	whole, err := New(cfg, agg)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := New(cfg, agg)
	if err != nil {
		t.Fatal(err)
	}
	wm := int64(-1)
	steps := rapid.IntRange(1, 100).Draw(t, "steps")
	for i := range steps {
		if rapid.IntRange(0, 5).Draw(t, fmt.Sprint("snapshot", i)) == 0 {
			b, err := restored.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if restored, err = Restore(cfg, agg, b); err != nil {
				t.Fatal(err)
			}
		}
		var g, w []out
		if rapid.IntRange(0, 3).Draw(t, fmt.Sprint("kind", i)) == 0 {
			wm += rapid.Int64Range(0, 15).Draw(t, fmt.Sprint("advance", i))
			whole.Watermark(wm)
			restored.Watermark(wm)
			w, g = collect(whole, false, "", 0, 0), collect(restored, false, "", 0, 0)
		} else {
			key := rapid.SampledFrom([]string{"a", "b", "c", "d"}).Draw(t, fmt.Sprint("key", i))
			ts := wm + rapid.Int64Range(-20, 30).Draw(t, fmt.Sprint("ts", i))
			late1, err1 := whole.Event(key, ts, int64(i))
			late2, err2 := restored.Event(key, ts, int64(i))
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			w, g = collect(whole, late1, key, ts, int64(i)), collect(restored, late2, key, ts, int64(i))
		}
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("step %d:\nrestored      %v\nuninterrupted %v", i, g, w)
		}
	}
	whole.Watermark(EndOfInput)
	restored.Watermark(EndOfInput)
	if g, w := fmt.Sprint(collect(restored, false, "", 0, 0)), fmt.Sprint(collect(whole, false, "", 0, 0)); g != w {
		t.Fatalf("end of input:\nrestored      %v\nuninterrupted %v", g, w)
	}
	if whole.Stats() != restored.Stats() {
		t.Fatalf("stats differ: restored %+v, uninterrupted %+v", restored.Stats(), whole.Stats())
	}
}

func TestRestoreRejects(t *testing.T) {
	cfg := Config{Kind: Tumbling, Size: 10}
	e, err := New(cfg, Count[int64]{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Event("a", 5, 1); err != nil {
		t.Fatal(err)
	}
	b, err := e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cfg  Config
		data []byte
	}{
		"other config": {Config{Kind: Tumbling, Size: 20}, b},
		"truncated":    {cfg, b[:len(b)/2]},
		"garbage":      {cfg, []byte("not a snapshot")},
	} {
		if _, err := Restore(tc.cfg, Count[int64]{}, tc.data); !errors.Is(err, ErrSnapshot) {
			t.Errorf("%s: got %v, want ErrSnapshot", name, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "window type is required"},
		{Config{Kind: Tumbling}, "size is required"},
		{Config{Kind: Sliding, Size: 10}, "slide is required"},
		{Config{Kind: Sliding, Size: 10, Slide: 20}, "longer than size"},
		{Config{Kind: Session}, "gap is required"},
		{Config{Kind: Session, Gap: 5, Offset: 1}, "offset applies only"},
		{Config{Kind: Tumbling, Size: 10, Gap: 1}, "gap applies only"},
		{Config{Kind: Tumbling, Size: -1}, "outside"},
		{Config{Kind: Lookback, Size: 10, Lateness: -1}, "lateness"},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an ErrConfig saying %q", tc.cfg, err, tc.want)
		}
	}
	e, _ := New(Config{Kind: Tumbling, Size: 10}, Count[int64]{})
	if _, err := e.Event("a", MaxTime+1, 1); !errors.Is(err, ErrTime) {
		t.Errorf("event past MaxTime: got %v, want ErrTime", err)
	}
}

// A captured lookback state encodes as the snapshot taken at the capture,
// whatever the engine does in between: a late event re-fires windows
// (their firing counts change) and the watermark moves on.
func TestCaptureIsTheStateAtTheCapture(t *testing.T) {
	e, err := New(Config{Kind: Lookback, Size: 10, Lateness: 100}, Count[int64]{})
	if err != nil {
		t.Fatal(err)
	}
	for ts := int64(1); ts <= 20; ts++ {
		if _, err := e.Event("k", ts, 1); err != nil {
			t.Fatal(err)
		}
	}
	e.Watermark(30)
	e.Advance()
	for _, late := range []int64{5, 6} { // each re-fires the windows it falls in
		if _, err := e.Event("k", late, 1); err != nil {
			t.Fatal(err)
		}
		e.Watermark(31)
		e.Advance()
	}
	want, err := e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Capture()
	if err != nil {
		t.Fatal(err)
	}
	for _, late := range []int64{7, 8, 9} {
		if _, err := e.Event("k", late, 1); err != nil {
			t.Fatal(err)
		}
		e.Watermark(32 + late)
		e.Advance()
	}
	got, err := c.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	// Decoded: gob writes a map's entries in no set order.
	decode := func(b []byte) snapshot[int64, int64] {
		var s snapshot[int64, int64]
		if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if !reflect.DeepEqual(decode(got), decode(want)) {
		t.Fatalf("the captured state changed with the engine:\n%+v\nwant\n%+v", decode(got), decode(want))
	}
	if now, _ := e.Snapshot(); reflect.DeepEqual(decode(now), decode(want)) {
		t.Fatal("the engine did not change after the capture: the test shows nothing")
	}
	tum, err := New(Config{Kind: Tumbling, Size: 10}, Count[int64]{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tum.Capture(); !errors.Is(err, ErrProbe) {
		t.Fatalf("capturing a tumbling engine: %v, want ErrProbe", err)
	}
}
