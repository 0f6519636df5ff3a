package eventlog

import (
	"context"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// TestStreamReadsMatchAModel checks ReadStream, ReadAll and Head against a
// plain slice of events (STYLE.md 7: the clever code against a dumb
// reference) while appends of random sizes land in the tail index, in
// Pebble (grouped runs), across segment rolls and reopens.
func TestStreamReadsMatchAModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		opts := Options{Durability: SyncNone, SegmentSize: 64 << 10}
		l, err := Open(dir, opts)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { l.Close() }()
		ctx := context.Background()
		var all []event.Record // the model: every record in position order
		streams := []string{"a", "b-1", "b-2"}

		check := func(stream string, o store.ReadStreamOptions) {
			var want []event.Record
			for _, r := range all {
				if r.Stream == stream {
					want = append(want, r)
				}
			}
			var got []event.Record
			var gotErr error
			for r, err := range l.ReadStream(ctx, stream, o) {
				if err != nil {
					gotErr = err
					break
				}
				got = append(got, r)
			}
			if len(want) == 0 {
				if gotErr == nil {
					rt.Fatalf("ReadStream(%s) of a missing stream: no error", stream)
				}
				return
			}
			if gotErr != nil {
				rt.Fatalf("ReadStream(%s, %+v): %v", stream, o, gotErr)
			}
			// Apply the options to the model.
			var exp []event.Record
			if o.Backwards {
				from := o.From
				if from == 0 {
					from = uint64(len(want))
				}
				for i := len(want) - 1; i >= 0; i-- {
					if want[i].Version <= from {
						exp = append(exp, want[i])
					}
				}
			} else {
				for _, r := range want {
					if r.Version >= o.From {
						exp = append(exp, r)
					}
				}
			}
			if o.Limit > 0 && len(exp) > o.Limit {
				exp = exp[:o.Limit]
			}
			if len(got) != len(exp) {
				rt.Fatalf("ReadStream(%s, %+v) gave %d records, want %d", stream, o, len(got), len(exp))
			}
			for i := range got {
				if got[i].ID != exp[i].ID || got[i].Version != exp[i].Version || got[i].Position != exp[i].Position {
					rt.Fatalf("ReadStream(%s, %+v)[%d] = v%d@%d, want v%d@%d", stream, o, i, got[i].Version, got[i].Position, exp[i].Version, exp[i].Position)
				}
			}
		}

		steps := rapid.IntRange(1, 100).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0, 1, 2, 3, 4: // append
				stream := rapid.SampledFrom(streams).Draw(rt, "stream")
				n := rapid.IntRange(1, 40).Draw(rt, "n")
				size := rapid.IntRange(0, 3000).Draw(rt, "size")
				evs := make([]event.Event, n)
				for i := range evs {
					evs[i] = event.Event{ID: event.NewID(), Type: "t", Data: make([]byte, size)}
				}
				res, err := l.Append(ctx, stream, store.Any, evs...)
				if err != nil {
					rt.Fatal(err)
				}
				version := res.Version - uint64(n)
				for i, e := range evs {
					version++
					all = append(all, event.Record{Event: e, Stream: stream, Version: version, Position: res.FirstPosition + uint64(i)})
				}
			case 5: // move the tail into Pebble
				l.flushIndex()
			case 6: // reopen
				if err := l.Close(); err != nil {
					rt.Fatal(err)
				}
				if l, err = Open(dir, opts); err != nil {
					rt.Fatal(err)
				}
			default: // read
				stream := rapid.SampledFrom(streams).Draw(rt, "read stream")
				o := store.ReadStreamOptions{
					From:      uint64(rapid.IntRange(0, 200).Draw(rt, "from")),
					Backwards: rapid.Bool().Draw(rt, "backwards"),
					Limit:     rapid.IntRange(0, 100).Draw(rt, "limit"),
				}
				check(stream, o)
			}
		}
		for _, s := range streams {
			check(s, store.ReadStreamOptions{})
			check(s, store.ReadStreamOptions{Backwards: true})
		}
		if h, _ := l.Head(ctx); h != uint64(len(all)) {
			rt.Fatalf("head %d, model %d", h, len(all))
		}
		i := 0
		for r, err := range l.ReadAll(ctx, store.ReadAllOptions{}) {
			if err != nil {
				rt.Fatal(err)
			}
			if r.ID != all[i].ID {
				rt.Fatalf("ReadAll[%d] = %s, model %s", i, r.ID, all[i].ID)
			}
			i++
		}
		if i != len(all) {
			rt.Fatal(fmt.Sprintf("ReadAll gave %d records, model %d", i, len(all)))
		}
	})
}
