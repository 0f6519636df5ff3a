package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

func TestParseSpecErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "name: a\nkey: k\nwindow: {type: tumbling, size: 1m}\nkye: x\n", "field kye not found"},
		{"bad name", "name: a-b\nkey: k\nwindow: {type: tumbling, size: 1m}\n", "name"},
		{"no key", "name: a\nwindow: {type: tumbling, size: 1m}\n", "key"},
		{"bad duration", "name: a\nkey: k\nwindow: {type: tumbling, size: 1x}\n", "not a duration"},
		{"bad kind", "name: a\nkey: k\nwindow: {type: hopping, size: 1m}\n", "window"},
		{"no size", "name: a\nkey: k\nwindow: {type: tumbling}\n", "window"},
	} {
		if _, err := ParseSpec(strings.NewReader(tc.yaml)); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrSpec mentioning %q", tc.name, err, tc.want)
		}
	}
}

// A spec'd job over the log: per-user count and sum per minute of event
// time, appended to job-NAME; a restart appends nothing twice.
// memCheckpoints is a CheckpointStore in memory.
type memCheckpoints struct {
	mu           sync.Mutex
	data         []byte
	loads, saves int
}

func (m *memCheckpoints) LoadCheckpoint(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	return m.data, nil
}

func (m *memCheckpoints) SaveCheckpoint(_ context.Context, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saves++
	m.data = slices.Clone(b)
	return nil
}

// A job resumes from its checkpoint, kept in a directory or in a
// CheckpointStore (PostgreSQL on a cluster).
func TestSpecRun(t *testing.T) {
	t.Run("dir", func(t *testing.T) { testSpecRun(t, nil) })
	t.Run("store", func(t *testing.T) {
		cps := &memCheckpoints{}
		testSpecRun(t, cps)
		if cps.saves == 0 || cps.loads != 2 {
			t.Fatalf("the store saved %d and loaded %d checkpoints", cps.saves, cps.loads)
		}
	})
}

func testSpecRun(t *testing.T, cps CheckpointStore) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := eventlog.Open(dir+"/log", eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	spec, err := ParseSpec(strings.NewReader("name: spend\ntypes: [charged]\nkey: user\nvalue: amount\ntime: at\nwindow: {type: tumbling, size: 1m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	charge := func(user, amount string, sec int) {
		data := fmt.Sprintf(`{"user":%q,"amount":%q,"at":%d}`, user, amount, sec*1000)
		if _, err := l.Append(ctx, "cards-"+user, store.Any, event.Event{Type: "charged", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	charge("u1", "10.50", 1)
	charge("u1", "2.25", 30)
	charge("u2", "7", 59)
	charge("u1", "1", 125) // moves the watermark past the first minute
	type result struct {
		Key   string
		Start int64 `json:"window_start"`
		Value struct {
			N   int64
			Sum string
		}
	}
	run := func(want int) []result {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			if cps != nil {
				done <- spec.RunWith(rctx, l, RunOptions{Checkpoints: cps})
				return
			}
			done <- spec.Run(rctx, l, dir+"/jobs", nil)
		}()
		var got []result
		for rec, err := range l.Subscribe(rctx, store.SubscribeOptions{Filter: store.Filter{StreamPrefix: spec.OutputStream()}}) {
			if err != nil {
				t.Fatal(err)
			}
			var r result
			if err := json.Unmarshal(rec.Data, &r); err != nil {
				t.Fatalf("%s: %v", rec.Data, err)
			}
			got = append(got, r)
			if len(got) == want {
				break
			}
		}
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		return got
	}
	got := run(2)
	slices.SortFunc(got, func(a, b result) int { return strings.Compare(a.Key, b.Key) })
	if fmt.Sprint(got) != "[{u1 0 {2 12.75}} {u2 0 {1 7}}]" {
		t.Fatalf("results %v", got)
	}
	// Restart: the checkpoint resumes; the next minute's results follow
	// the first two, with none written twice.
	charge("u3", "4", 190)
	got = run(3)
	if len(got) != 3 || got[2].Key != "u1" || got[2].Start != 120_000 || got[2].Value.N != 1 {
		t.Fatalf("after a restart: %v", got)
	}
}

// Two shares of a job (on two nodes, say), each with its own checkpoint,
// write together what the whole job writes: each share computes its keys'
// windows, and every input moves both shares' event time on, so a share's
// windows close even when its own keys go quiet.
func TestSharesComputeWhatTheWholeJobComputes(t *testing.T) {
	ctx := context.Background()
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for m := range 3 {
		for u := range 10 {
			data := fmt.Sprintf(`{"user":"u%d","amount":"%d.5","at":%d}`, u, m+u, (m*60+u)*1000)
			if _, err := l.Append(ctx, fmt.Sprintf("cards-u%d", u), store.Any, event.Event{Type: "charged", Data: []byte(data)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Only u0 goes on: the others' second minute closes on its events.
	l.Append(ctx, "cards-u0", store.Any, event.Event{Type: "charged", Data: []byte(`{"user":"u0","amount":"1","at":185000}`)})
	results := func(spec *Spec, runs ...func(context.Context) error) []string {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		errs := make(chan error, len(runs))
		for _, run := range runs {
			go func() { errs <- run(rctx) }()
		}
		var got []string
		for rec, err := range l.Subscribe(rctx, store.SubscribeOptions{Filter: store.Filter{StreamPrefix: spec.OutputStream()}}) {
			if err != nil {
				t.Fatalf("%d results of 30: %v", len(got), err)
			}
			var r struct {
				Key   string
				Start int64 `json:"window_start"`
				Value struct {
					N   int64
					Sum string
				}
			}
			json.Unmarshal(rec.Data, &r)
			got = append(got, fmt.Sprintf("%s@%d:%d/%s", r.Key, r.Start, r.Value.N, r.Value.Sum))
			if len(got) == 30 { // 10 users × 3 closed minutes
				break
			}
		}
		cancel()
		for range runs {
			if err := <-errs; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
		}
		slices.Sort(got)
		return got
	}
	parse := func(name string) *Spec {
		spec, err := ParseSpec(strings.NewReader("name: " + name + "\ntypes: [charged]\nkey: user\nvalue: amount\ntime: at\nwindow: {type: tumbling, size: 1m}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return spec
	}
	whole := parse("whole")
	want := results(whole, func(ctx context.Context) error {
		return whole.RunWith(ctx, l, RunOptions{Checkpoints: &memCheckpoints{}})
	})
	shared := parse("shared")
	var shares []func(context.Context) error
	for k := range 2 {
		shares = append(shares, func(ctx context.Context) error {
			return shared.RunWith(ctx, l, RunOptions{Checkpoints: &memCheckpoints{}, Share: Share{Index: k, Count: 2}})
		})
	}
	got := results(shared, shares...)
	if !slices.Equal(got, want) {
		t.Fatalf("two shares wrote\n%v\nthe whole job\n%v", got, want)
	}
	if err := shared.RunWith(ctx, l, RunOptions{Checkpoints: &memCheckpoints{}, Share: Share{Index: 2, Count: 2}}); err == nil {
		t.Fatal("a share that does not exist was accepted")
	}
}

// A share's keys still spread over all its engines.
func TestShareKeysSpreadOverEngines(t *testing.T) {
	for _, n := range []int{2, 3, 4} {
		sh := Share{Index: 0, Count: n}
		seen := map[int]int{}
		for i := range 10_000 {
			key := fmt.Sprintf("user-%d", i)
			if sh.owns(key) {
				seen[partitionOf(key, n)]++
			}
		}
		if len(seen) != n {
			t.Errorf("share 0 of %d puts its keys on engines %v only", n, seen)
		}
	}
}
