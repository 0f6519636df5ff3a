package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/pglease"
	"github.com/stratadb/strata/pgstore"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

// tallies is a projection in PostgreSQL's SQL: per stream, the events, the
// sum of their "n" and the last position; per event type, the events and
// the sum. The per-type rows are written by every partition, commutatively.
// Applying an event twice, or losing one, shows in the sums.
type tallies struct {
	hangAfter uint64 // > 0: block inside the first batch past this position (the victim node)
}

func (tallies) Name() string { return "tallies" }

func (tallies) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS tally_streams (stream TEXT PRIMARY KEY, events BIGINT NOT NULL, total BIGINT NOT NULL, last_position BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS tally_types (type TEXT PRIMARY KEY, events BIGINT NOT NULL, total BIGINT NOT NULL);`)
	return err
}

// Apply adds a batch up first and writes each row once, in key order: the
// per-type rows are shared by the partitions, and runners that locked them
// in different orders would deadlock.
func (t tallies) Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error {
	type tally struct{ events, total, last int64 }
	streams, types := map[string]*tally{}, map[string]*tally{}
	add := func(m map[string]*tally, k string, n, pos int64) {
		x := m[k]
		if x == nil {
			x = &tally{}
			m[k] = x
		}
		x.events++
		x.total += n
		x.last = pos
	}
	for _, r := range batch {
		var v struct{ N int64 }
		if err := json.Unmarshal(r.Data, &v); err != nil {
			return err
		}
		add(streams, r.Stream, v.N, int64(r.Position))
		add(types, r.Type, v.N, int64(r.Position))
	}
	for _, k := range slices.Sorted(maps.Keys(streams)) {
		x := streams[k]
		if _, err := tx.ExecContext(ctx, `INSERT INTO tally_streams (stream, events, total, last_position) VALUES ($1, $2, $3, $4)
ON CONFLICT (stream) DO UPDATE SET events = tally_streams.events + excluded.events, total = tally_streams.total + excluded.total, last_position = excluded.last_position`, k, x.events, x.total, x.last); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(types)) {
		x := types[k]
		if _, err := tx.ExecContext(ctx, `INSERT INTO tally_types (type, events, total) VALUES ($1, $2, $3)
ON CONFLICT (type) DO UPDATE SET events = tally_types.events + excluded.events, total = tally_types.total + excluded.total`, k, x.events, x.total); err != nil {
			return err
		}
	}
	if t.hangAfter > 0 && batch[len(batch)-1].Position > t.hangAfter {
		// The batch's rows are written, its transaction open: say so and
		// wait to be killed.
		fmt.Printf("mid-batch %d\n", batch[len(batch)-1].Position)
		select {}
	}
	return nil
}

const nodeEnv = "STRATA_CLUSTER_TEST_NODE" // name,url,logSchema,rmSchema,hangAfter

func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" {
		os.Exit(nodeMain(spec))
	}
	os.Exit(m.Run())
}

// nodeMain is one Strata node of the test: it runs its share of the
// projection until killed.
func nodeMain(spec string) int {
	f := strings.Split(spec, ",")
	name, url, logSchema, rmSchema := f[0], f[1], f[2], f[3]
	hangAfter, _ := strconv.ParseUint(f[4], 10, 64)
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, name+":", err); return 3 }
	log, err := pgstore.Open(ctx, url, pgstore.Options{Schema: logSchema, MaxConns: 4})
	if err != nil {
		return fail(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fail(err)
	}
	db, err := projection.OpenPostgres(ctx, url, rmSchema)
	if err != nil {
		return fail(err)
	}
	fmt.Println("ready")
	err = Run(ctx, pool, db, log, []projection.Projection{tallies{hangAfter: hangAfter}}, Options{
		Partitions: 6,
		Lease:      pglease.Options{Schema: rmSchema, Node: name, TTL: 2 * time.Second, Renew: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))},
		Runner:     projection.Options{BatchSize: 25},
	})
	return fail(err)
}

// testNode is a node process.
type testNode struct {
	cmd   *exec.Cmd
	lines chan string // its stdout
}

func startTestNode(t *testing.T, name, url, logSchema, rmSchema string, hangAfter uint64) *testNode {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%s,%s,%d", nodeEnv, name, url, logSchema, rmSchema, hangAfter))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &testNode{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
		io.Copy(io.Discard, out)
		close(n.lines)
	}()
	t.Cleanup(func() { n.kill() })
	n.expect(t, "ready")
	return n
}

// expect waits for a line starting with prefix and returns it.
func (n *testNode) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-n.lines:
			if !ok {
				t.Fatalf("node ended before saying %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("node never said %q", prefix)
		}
	}
}

func (n *testNode) kill() {
	if n.cmd.ProcessState == nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		n.cmd.Wait()
	}
}

func randomName(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestThreeNodesSurviveAKillAndBuildWhatOneBuilds is issue 9's three-node
// test: three processes share a projection's six partitions through
// leases; one is killed with SIGKILL in the middle of a batch; the two
// others take its partitions over from their checkpoints; it comes back
// and takes its share again; and the read model equals one built from
// scratch by a single runner.
func TestThreeNodesSurviveAKillAndBuildWhatOneBuilds(t *testing.T) {
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("STRATA_TEST_POSTGRES_URL is not set: skipping the three-node test (set it to a PostgreSQL URL to run it)")
	}
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx := context.Background()
	logSchema, rmSchema, scratchSchema := randomName("strata_nodes_log_"), randomName("strata_nodes_rm_"), randomName("strata_nodes_scratch_")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range []string{logSchema, rmSchema, scratchSchema} {
			pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE")
		}
		pool.Close()
	})
	log, err := pgstore.Open(ctx, url, pgstore.Options{Schema: logSchema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })

	var appended uint64
	appendSome := func(n, from int) {
		t.Helper()
		for i := 0; i < n; i += 10 {
			evs := make([]event.Event, 10)
			for j := range evs {
				evs[j] = event.Event{Type: fmt.Sprintf("t%d", (from+i+j)%4), Data: fmt.Appendf(nil, `{"n":%d}`, (from+i+j)%97)}
			}
			res, err := log.Append(ctx, fmt.Sprintf("acct-%d", (from+i)/10%37), store.Any, evs...)
			if err != nil {
				t.Fatal(err)
			}
			appended = res.LastPosition
		}
	}
	appendSome(2000, 0)
	history := appended

	nodes := map[string]*testNode{}
	for _, name := range []string{"n1", "n2", "n3"} {
		var hang uint64
		if name == "n2" {
			hang = history // hangs in its first batch of live events
		}
		nodes[name] = startTestNode(t, name, url, logSchema, rmSchema, hang)
	}
	holders := func() map[string]int {
		t.Helper()
		rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT holder, count(*) FROM %s.strata_leases WHERE holder IS NOT NULL AND expires_at > clock_timestamp() GROUP BY holder`, pgx.Identifier{rmSchema}.Sanitize()))
		if err != nil {
			return nil // the table may not exist yet
		}
		m := map[string]int{}
		for rows.Next() {
			var h string
			var c int
			rows.Scan(&h, &c)
			m[h] = c
		}
		rows.Close()
		return m
	}
	minCheckpoint := func() uint64 {
		t.Helper()
		var lowest sql.NullInt64
		var n int
		err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT min(position), count(*) FROM %s.strata_checkpoints WHERE projection LIKE 'tallies#%%'`, pgx.Identifier{rmSchema}.Sanitize())).Scan(&lowest, &n)
		if err != nil || n < 6 {
			return 0
		}
		return uint64(lowest.Int64)
	}
	eventually(t, "the three nodes hold two partitions each", func() bool {
		return maps.Equal(holders(), map[string]int{"n1": 2, "n2": 2, "n3": 2})
	})
	eventually(t, "the history is applied", func() bool { return minCheckpoint() >= history })

	// Live traffic; n2 stops inside its first live batch and is killed
	// there, its transaction open.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		appendSome(1500, 2000)
	}()
	nodes["n2"].expect(t, "mid-batch")
	nodes["n2"].kill()
	wg.Wait()
	eventually(t, "the survivors took n2's partitions over", func() bool {
		return maps.Equal(holders(), map[string]int{"n1": 3, "n3": 3})
	})
	eventually(t, "the survivors applied everything", func() bool { return minCheckpoint() >= appended })

	// n2 comes back (a new process, not hanging) and takes its share again.
	nodes["n2"] = startTestNode(t, "n2", url, logSchema, rmSchema, 0)
	eventually(t, "n2 takes two partitions back", func() bool {
		return maps.Equal(holders(), map[string]int{"n1": 2, "n2": 2, "n3": 2})
	})
	appendSome(500, 3500)
	eventually(t, "the three nodes applied everything", func() bool { return minCheckpoint() >= appended })

	// A single runner, from scratch, into another schema.
	sdb, err := projection.OpenPostgres(ctx, url, scratchSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := projection.NewRunner(tallies{}, sdb, log, projection.Options{BatchSize: 500})
	go r.Run(rctx)
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, appended); err != nil {
		t.Fatal(err)
	}
	rdb, err := projection.OpenPostgres(ctx, url, rmSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	for _, q := range []string{
		`SELECT stream || ' ' || events || ' ' || total || ' ' || last_position FROM tally_streams ORDER BY 1`,
		`SELECT type || ' ' || events || ' ' || total FROM tally_types ORDER BY 1`,
	} {
		got, want := rowsOf(t, rdb, q), rowsOf(t, sdb, q)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("the nodes' read model differs from a scratch build:\n got %v\nwant %v", got, want)
		}
	}
	var events int64
	sdb.QueryRow(`SELECT sum(events) FROM tally_types`).Scan(&events)
	if uint64(events) != appended {
		t.Fatalf("scratch build counted %d events of %d", events, appended)
	}
}

func rowsOf(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// eventually polls cond until it holds or a minute passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
