package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// counts counts events per stream, coalescing each batch (one upsert per
// stream), so that it replays fast. def is its Definition; scale multiplies
// what it counts (a change of meaning, for the shadow check).
type counts struct {
	def     string
	scale   int
	effects *effectLog
}

func (c counts) Name() string       { return "counts" }
func (c counts) Definition() string { return c.def }

func (counts) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)`)
	return err
}

func (c counts) Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error {
	per := map[string]int{}
	for _, r := range batch {
		per[r.Stream] += max(c.scale, 1)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO counts (stream, n) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET n = n + excluded.n`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for s, n := range per {
		if _, err := stmt.ExecContext(ctx, s, n); err != nil {
			return err
		}
	}
	return nil
}

// effectLog records the positions a SideEffecter was called for.
type effectLog struct {
	mu  sync.Mutex
	pos []uint64
}

func (e *effectLog) positions() []uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.pos)
}

type noisyCounts struct{ counts }

func (c noisyCounts) Effect(_ context.Context, r event.Record) error {
	c.effects.mu.Lock()
	defer c.effects.mu.Unlock()
	c.effects.pos = append(c.effects.pos, r.Position)
	return nil
}

func openCatalog(t *testing.T) *Catalog {
	t.Helper()
	cat, err := OpenCatalog(filepath.Join(t.TempDir(), "readmodels"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

// fillCounts appends n events to streams streams, batch events per append.
func fillCounts(t *testing.T, s store.Store, n, streams, batch int) uint64 {
	t.Helper()
	evs := make([]event.Event, batch)
	for i := range evs {
		evs[i] = event.Event{Type: "tick", Data: []byte(`{}`)}
	}
	var last uint64
	for i := 0; i < n; i += batch {
		res, err := s.Append(context.Background(), fmt.Sprintf("c-%d", (i/batch)%streams), store.Any, evs[:min(batch, n-i)]...)
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastPosition
	}
	return last
}

// snapshot is one query's answer: the version that answered, its
// checkpoint and what its table adds up to, read in one statement.
type snapshot struct {
	version  int
	position sql.NullInt64
	total    sql.NullInt64
}

func queryCounts(ctx context.Context, cat *Catalog) (snapshot, error) {
	q, err := cat.OpenQuery(ctx)
	if err != nil {
		return snapshot{}, err
	}
	defer q.Close()
	v, ok := q.Serving["counts"]
	if !ok {
		if _, err := q.Reflects(ctx, "counts"); err != nil {
			return snapshot{}, err
		}
		return snapshot{}, errors.New("no serving version and no error")
	}
	s := snapshot{version: v.Number}
	err = q.QueryRowContext(ctx, `SELECT (SELECT position FROM counts.strata_checkpoints WHERE projection = 'counts'), (SELECT sum(n) FROM counts)`).Scan(&s.position, &s.total)
	return s, q.Explain(err)
}

// managed is a Manager running in the background.
type managed struct {
	cancel   context.CancelFunc
	finished chan struct{} // closed when Run has returned err
	err      error
}

// stop ends the manager's Run and returns its result.
func (mg *managed) stop() error {
	mg.cancel()
	<-mg.finished
	return mg.err
}

// startManager runs m until it is stopped, returns, or the test ends.
func startManager(t *testing.T, m *Manager) *managed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	mg := &managed{cancel: cancel, finished: make(chan struct{})}
	go func() {
		defer close(mg.finished)
		mg.err = m.Run(ctx)
	}()
	t.Cleanup(func() { mg.stop() })
	return mg
}

// waitServing waits until m serves version n at position pos or later.
func waitServing(t *testing.T, m *Manager, n int, pos uint64, mg *managed) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		if r := m.Serving(); r != nil {
			if _, v, ok, _ := m.Status(); ok && v.Number == n {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := r.WaitFor(ctx, pos)
				cancel()
				if err == nil {
					return
				}
			}
		}
		select {
		case <-mg.finished:
			t.Fatalf("manager ended: %v", mg.err)
		case <-deadline:
			t.Fatalf("version %d never served position %d", n, pos)
		case <-time.After(10 * time.Millisecond): // polling the manager's status
		}
	}
}

// The must-show: appends go on at a steady rate while a projection
// over a million existing events is rebuilt and switched; every query
// meanwhile is answered by a complete version (its rows add up to exactly
// its checkpoint: each event counts 1) or says "building", never by a
// partial one; afterwards the read model equals the log.
func TestRebuildDuringLiveTraffic(t *testing.T) {
	f := newFixture(t)
	cat := openCatalog(t)
	fillCounts(t, f.log, 1_000_000, 1000, 1000)
	head, _ := f.log.Head(context.Background())

	// Version 1: a first build. Until it serves, queries say "building".
	m1 := NewManager(counts{def: "v1"}, cat, f.log, ManagerOptions{Replay: ReplayOptions{FlushEvery: 100_000}})
	mg1 := startManager(t, m1)
	waitServing(t, m1, 1, head, mg1)
	if err := mg1.stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("manager 1: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var appended atomic.Uint64
	wg.Add(2)
	go func() { // steady live traffic
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Not on ctx: an append whose caller gives up may still land
			// later (eventlog says so), after the log has been counted
			// below. Each append completes; ctx only stops the next one.
			res, err := f.log.Append(context.Background(), fmt.Sprintf("live-%d", i%7), store.Any, event.Event{Type: "tick", Data: []byte(`{}`)}, event.Event{Type: "tick", Data: []byte(`{}`)})
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			appended.Store(res.LastPosition)
		}
	}()
	var answers []snapshot
	var building int
	var seenV2 atomic.Bool
	go func() { // queries all along
		defer wg.Done()
		for ctx.Err() == nil {
			s, err := queryCounts(ctx, cat)
			switch {
			case errors.Is(err, ErrBuilding):
				building++
			case err != nil:
				if ctx.Err() == nil {
					t.Errorf("query: %v", err)
				}
				return
			default:
				answers = append(answers, s)
				if s.version == 2 {
					seenV2.Store(true)
				}
			}
		}
	}()

	// Version 2: a rebuild of the same definition (with the shadow check)
	// while the traffic goes on.
	var phases []BuildPhase
	var pmu sync.Mutex
	m2 := NewManager(counts{def: "v1"}, cat, f.log, ManagerOptions{Rebuild: true, Shadow: true, SwitchLag: 100,
		Replay: ReplayOptions{FlushEvery: 100_000},
		Progress: func(b BuildStatus) {
			pmu.Lock()
			defer pmu.Unlock()
			if len(phases) == 0 || phases[len(phases)-1] != b.Phase {
				phases = append(phases, b.Phase)
			}
		}})
	mg2 := startManager(t, m2)
	waitServing(t, m2, 2, head, mg2)
	// Some traffic after the switch, and queries answered by version 2,
	// then stop it and let v2 catch up. (Counting the traffic from head,
	// the position before the rebuild, let a slow rebuild end the test
	// right at the switch, before any query ran against version 2.)
	after := appended.Load() + 200
	deadline := time.Now().Add(30 * time.Second)
	for appended.Load() < after || !seenV2.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the switch: traffic at %d (waiting for %d), a query answered by version 2: %v", appended.Load(), after, seenV2.Load())
		}
		select {
		case <-mg2.finished:
			t.Fatalf("manager 2 ended: %v", mg2.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	switched := appended.Load()
	waitServing(t, m2, 2, switched, mg2)
	cancel()
	wg.Wait()
	final, _ := f.log.Head(context.Background())
	waitServing(t, m2, 2, final, mg2)

	var sawV1, sawV2 bool
	for _, a := range answers {
		if !a.position.Valid || a.total.Int64 != a.position.Int64 {
			t.Fatalf("a query saw version %d with rows adding up to %v at checkpoint %v: a partial version", a.version, a.total, a.position)
		}
		sawV1 = sawV1 || a.version == 1
		sawV2 = sawV2 || a.version == 2
	}
	if !sawV1 || !sawV2 {
		t.Fatalf("queries saw version 1: %v, version 2: %v (%d answers)", sawV1, sawV2, len(answers))
	}
	if building != 0 {
		t.Fatalf("%d queries answered building while version 1 served", building)
	}
	pmu.Lock()
	if want := []BuildPhase{PhaseReplaying, PhaseCatchingUp, PhaseAligning, PhaseSwitched}; !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	pmu.Unlock()

	// The read model equals the log.
	want := map[string]int{}
	for rec, err := range f.log.ReadAll(context.Background(), store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		want[rec.Stream]++
	}
	mg2.stop()
	q, err := cat.OpenQuery(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rows, err := q.QueryContext(context.Background(), `SELECT stream, n FROM counts`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		got[s] = n
	}
	rows.Close()
	if len(got) != len(want) {
		t.Fatalf("%d streams in the read model, %d in the log", len(got), len(want))
	}
	for s, n := range want {
		if got[s] != n {
			t.Fatalf("stream %s: %d in the read model, %d in the log", s, got[s], n)
		}
	}
	vs, _ := cat.Versions(context.Background(), "counts")
	if len(vs) != 2 || vs[0].State != VersionRetired || vs[1].State != VersionServing {
		t.Fatalf("versions %+v", vs)
	}
}

func TestFirstBuildAnswersBuilding(t *testing.T) {
	f := newFixture(t)
	cat := openCatalog(t)
	head := fillCounts(t, f.log, 5000, 10, 10)
	ctx := context.Background()
	if _, err := queryCounts(ctx, cat); !errors.Is(err, ErrUnknownProjection) {
		t.Fatalf("before any version: %v", err)
	}
	// A build that stops at its first commit leaves a building version.
	bctx, cancel := context.WithCancel(ctx)
	m := NewManager(counts{def: "v1"}, cat, f.log, ManagerOptions{Replay: ReplayOptions{FlushEvery: 100, Workers: 2},
		Progress: func(b BuildStatus) {
			if b.Phase == PhaseReplaying && b.Position > 0 {
				cancel()
			}
		}})
	if err := m.Run(bctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted build: %v", err)
	}
	_, err := queryCounts(ctx, cat)
	var be *BuildingError
	if !errors.As(err, &be) || !errors.Is(err, ErrBuilding) || be.Version.Number != 1 || !strings.Contains(err.Error(), "building") {
		t.Fatalf("query during the build: %v", err)
	}
	// A query naming the table gets the same answer.
	q, err := cat.OpenQuery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.ExecContext(ctx, `SELECT * FROM counts`)
	if err = q.Explain(err); !errors.Is(err, ErrBuilding) {
		t.Fatalf("SELECT during the build: %v", err)
	}
	q.Close()
	// Restarted, the build resumes (same version) and serves.
	m = NewManager(counts{def: "v1"}, cat, f.log, ManagerOptions{ExitAfterSwitch: true})
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := queryCounts(ctx, cat)
	if err != nil || s.version != 1 || s.total.Int64 != int64(head) || s.position.Int64 != int64(head) {
		t.Fatalf("after the build: %+v, %v", s, err)
	}
}

func TestShadowCheckRefusesAChangeOfMeaning(t *testing.T) {
	f := newFixture(t)
	cat := openCatalog(t)
	fillCounts(t, f.log, 3000, 5, 10)
	ctx := context.Background()
	if err := NewManager(counts{def: "v1"}, cat, f.log, ManagerOptions{ExitAfterSwitch: true}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	// The "same" projection now counts double: the check must refuse.
	err := NewManager(counts{def: "v1", scale: 2}, cat, f.log, ManagerOptions{Rebuild: true, Shadow: true, ExitAfterSwitch: true}).Run(ctx)
	if !errors.Is(err, ErrShadowMismatch) {
		t.Fatalf("rebuild with another meaning: %v", err)
	}
	for _, want := range []string{"table counts: 5 rows only in the serving version 1", "table counts: 5 rows only in the new version 2", "stream=c-0, n=600", "stream=c-0, n=1200"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("diff lacks %q:\n%v", want, err)
		}
	}
	vs, _ := cat.Versions(ctx, "counts")
	if len(vs) != 2 || vs[0].State != VersionServing || vs[1].State != VersionAbandoned {
		t.Fatalf("versions after a refused switch: %+v", vs)
	}
	if s, err := queryCounts(ctx, cat); err != nil || s.version != 1 || s.total.Int64 != 3000 {
		t.Fatalf("query after a refused switch: %+v, %v", s, err)
	}
	// Without the check, the new meaning is a new definition and switches.
	if err := NewManager(counts{def: "v2", scale: 2}, cat, f.log, ManagerOptions{ExitAfterSwitch: true}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := queryCounts(ctx, cat); err != nil || s.version != 3 || s.total.Int64 != 6000 {
		t.Fatalf("after the switch to v2: %+v, %v", s, err)
	}
}

func TestSideEffectsStayQuietDuringBuilds(t *testing.T) {
	f := newFixture(t)
	cat := openCatalog(t)
	log := &effectLog{}
	p := noisyCounts{counts{def: "v1", effects: log}}
	fillCounts(t, f.log, 100, 3, 1)

	m := NewManager(p, cat, f.log, ManagerOptions{})
	mg := startManager(t, m)
	waitServing(t, m, 1, 100, mg)
	if got := log.positions(); len(got) != 0 {
		t.Fatalf("the first build sent effects for history: %v", got)
	}
	last := fillCounts(t, f.log, 10, 3, 1) // live: effects for 101..110
	waitServing(t, m, 1, last, mg)
	mg.stop()

	m = NewManager(p, cat, f.log, ManagerOptions{Rebuild: true})
	mg = startManager(t, m)
	waitServing(t, m, 2, last, mg)
	last = fillCounts(t, f.log, 5, 3, 1) // after the switch: 111..115
	waitServing(t, m, 2, last, mg)
	var want []uint64
	for p := uint64(101); p <= last; p++ {
		want = append(want, p)
	}
	got := log.positions()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("effects for %v, want each of %v once", got, want)
	}
}

// A declarative projection's webhooks follow the same rule: the serving
// version sends them for live events, once each; builds send none.
func TestWebhooksAreSentOnlyForLiveEvents(t *testing.T) {
	var mu sync.Mutex
	var got []uint64
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Projection string          `json:"projection"`
			Type       string          `json:"type"`
			Position   uint64          `json:"position"`
			Data       json.RawMessage `json:"data"`
		}
		err := json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || r.Method != http.MethodPost || body.Projection != "hooked" || body.Type != "added" || string(body.Data) != `{"n":1}` {
			bad = append(bad, fmt.Sprintf("%s %+v %v", r.Method, body, err))
		}
		got = append(got, body.Position)
	}))
	defer srv.Close()
	spec := fmt.Sprintf(`name: hooked
tables: ["CREATE TABLE IF NOT EXISTS hooked (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)"]
on:
  added: INSERT INTO hooked (stream, n) VALUES (:stream, :data.n) ON CONFLICT(stream) DO UPDATE SET n = n + excluded.n
webhooks:
  added: %s/hook
`, srv.URL)
	p, err := ParseSpec([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	cat := openCatalog(t)
	for range 20 {
		f.append(t, "s-1", "added", 1)
	}
	m := NewManager(p, cat, f.log, ManagerOptions{})
	mg := startManager(t, m)
	waitServing(t, m, 1, 20, mg)
	f.append(t, "s-2", "other", 1) // no webhook for this type
	last := f.append(t, "s-2", "added", 1).LastPosition
	waitServing(t, m, 1, last, mg)
	mg.stop()

	m = NewManager(p, cat, f.log, ManagerOptions{Rebuild: true})
	mg = startManager(t, m)
	waitServing(t, m, 2, last, mg)
	last = f.append(t, "s-3", "added", 1).LastPosition
	waitServing(t, m, 2, last, mg)
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("bad webhook calls: %v", bad)
	}
	if !slices.Equal(got, []uint64{22, 23}) {
		t.Fatalf("webhooks for positions %v, want [22 23]", got)
	}
}

func TestWebhookSpecsAreChecked(t *testing.T) {
	for _, u := range []string{"ftp://x/y", "not a url", "http://"} {
		spec := fmt.Sprintf("name: h\ntables: [\"CREATE TABLE IF NOT EXISTS h (a)\"]\non:\n  added: INSERT INTO h VALUES (1)\nwebhooks:\n  added: %q\n", u)
		if _, err := ParseSpec([]byte(spec)); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
			t.Errorf("%s: %v", u, err)
		}
	}
}
