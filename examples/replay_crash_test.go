package examples_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

const (
	replayCrashEnv = "STRATA_REPLAY_CRASH_DIR"
	// The replay's shape, the same in the children and in the parent's
	// final run (a resumed replay keeps its partition count anyway).
	replayCrashWorkers = 2
	replayCrashFlush   = 500
)

// The child of TestReplayResumesAfterSIGKILL. TestMain (crash_test.go)
// dispatches only its own child, so this one is dispatched from init, which
// runs before TestMain: like that child, it never gets to the tests.
func init() {
	if dir := os.Getenv(replayCrashEnv); dir != "" {
		replayUntilKilled(dir)
		os.Exit(0)
	}
}

// replayUntilKilled runs (or resumes) the parallel replay of lifetime_spend
// and prints a line after every partition commit, so that the parent knows
// what has been committed when it kills the process.
func replayUntilKilled(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	l, err := eventlog.OpenFollower(filepath.Join(dir, "log")) // Replay only reads
	if err != nil {
		fail(err)
	}
	db, err := projection.OpenSQLite(filepath.Join(dir, "readmodels.db"))
	if err != nil {
		fail(err)
	}
	cat, err := examples.New(l, nil)
	if err != nil {
		fail(err)
	}
	pos, err := projection.Replay(context.Background(), orders.LifetimeSpend{}, db, l, projection.ReplayOptions{
		Workers: replayCrashWorkers, FlushEvery: replayCrashFlush, Registry: cat.Registry,
		Progress: func(p projection.ReplayProgress) {
			// Unbuffered: once the parent reads the line, the commit is in.
			os.Stdout.WriteString(fmt.Sprintf("committed %d %d\n", p.Position, p.Until))
		},
	})
	if err != nil {
		fail(err)
	}
	os.Stdout.WriteString(fmt.Sprintf("done %d\n", pos))
}

// countingSpend is LifetimeSpend counting the OrderCreated events it was
// given in writes that applied (a transaction that fails rolls back).
type countingSpend struct {
	orders.LifetimeSpend
	n *atomic.Int64
}

func (c countingSpend) NewFold() projection.Fold {
	return &countingFold{Fold: c.LifetimeSpend.NewFold(), n: c.n}
}

type countingFold struct {
	projection.Fold
	n       *atomic.Int64
	pending int64
}

func (f *countingFold) Add(rec *event.Record) error {
	if rec.Type == "order.created" {
		f.pending++
	}
	return f.Fold.Add(rec)
}

func (f *countingFold) Write(ctx context.Context, tx *sql.Tx) error {
	if err := f.Fold.Write(ctx, tx); err != nil {
		return err
	}
	f.n.Add(f.pending)
	f.pending = 0
	return nil
}

// replayChildRun is what one child did before it died (or finished).
type replayChildRun struct {
	killed   bool   // by the parent's SIGKILL, in the middle of the replay
	commits  int    // partition commits it reported
	reported uint64 // the highest position it reported every partition past
}

// runReplayChild starts a child replaying lifetime_spend and SIGKILLs it
// once it has reported a few commits that take every partition past after,
// before the replay's target.
func runReplayChild(t *testing.T, dir string, after uint64) replayChildRun {
	t.Helper()
	// A child that neither dies nor finishes is killed after a minute,
	// and then has not reported finishing: the test fails, not hangs.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), replayCrashEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var run replayChildRun
	done, sent := false, false
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // to EOF, so that lines written before the kill count too
		line := sc.Text()
		out.WriteString(line + "\n")
		var pos, until uint64
		if _, err := fmt.Sscanf(line, "committed %d %d", &pos, &until); err == nil {
			run.commits++
			run.reported = max(run.reported, pos)
			if !sent && run.commits >= 3 && pos > after && pos < until {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
				sent = true
			}
		} else if strings.HasPrefix(line, "done ") {
			done = true
		}
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case done:
		// Finished: it ran out of work before the kill landed (the
		// caller finds the replay's checkpoint set).
	case sent && ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		run.killed = true
	default:
		t.Fatalf("replay child: %v (killed: %v)\nstdout:\n%s\nstderr:\n%s", err, sent, out.String(), stderr.String())
	}
	return run
}

// replayState reads, in the read-model database, lifetime_spend's partition
// checkpoints with their target, its projection checkpoint (0: none) and the
// number of orders in its rows.
func replayState(t *testing.T, db *sql.DB) (parts []uint64, until, cp uint64, orderCount int64) {
	t.Helper()
	rows, err := db.Query(`SELECT until, position FROM strata_replay_partitions WHERE projection = 'lifetime_spend' ORDER BY partition`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var u, p uint64
		if err := rows.Scan(&u, &p); err != nil {
			t.Fatal(err)
		}
		if len(parts) > 0 && u != until {
			t.Fatalf("partitions with different targets: %d, %d", until, u)
		}
		parts, until = append(parts, p), u
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	err = db.QueryRow(`SELECT position FROM strata_checkpoints WHERE projection = 'lifetime_spend'`).Scan(&cp)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COALESCE(SUM(orders), 0) FROM lifetime_spend`).Scan(&orderCount); err != nil {
		t.Fatal(err)
	}
	return parts, until, cp, orderCount
}

// A parallel replay killed (SIGKILL, no cleanup) again and again resumes
// each time from its partition checkpoints: every kill leaves the
// partitions further on, the replay that finishes it applies only what they
// had not, and the table equals one computed straight from the log, so
// nothing committed before a kill was lost or applied twice.
func TestReplayResumesAfterSIGKILL(t *testing.T) {
	const nOrders, rounds = 20_000, 4
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	l, err := eventlog.Open(logDir, eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	head := fillOrders(t, l, nOrders)
	// Where the OrderCreated events are, to count those up to a position.
	var created []uint64
	for rec, err := range l.ReadAll(context.Background(), store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == "order.created" {
			created = append(created, rec.Position)
		}
	}
	if len(created) != nOrders {
		t.Fatalf("%d OrderCreated events, want %d", len(created), nOrders)
	}
	createdUpTo := func(pos uint64) int64 {
		return int64(sort.Search(len(created), func(i int) bool { return created[i] > pos }))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("log: %d events, %d orders, written in %v", head, nOrders, time.Since(start).Round(time.Millisecond))

	dbPath := filepath.Join(dir, "readmodels.db")
	var low uint64 // the lowest partition checkpoint so far
	kills, finished := 0, false
	for round := 1; round <= rounds && !finished; round++ {
		start := time.Now()
		run := runReplayChild(t, dir, low)
		db, err := projection.OpenSQLite(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		parts, until, cp, orderCount := replayState(t, db)
		db.Close()
		if !run.killed {
			// Allowed only once some kill has shown a resumption.
			if kills == 0 || cp != head || parts != nil {
				t.Fatalf("round %d: the replay finished before it could be killed (%d kills so far; checkpoint %d, partitions %v): make the log bigger", round, kills, cp, parts)
			}
			t.Logf("round %d: the child finished the replay in %v", round, time.Since(start).Round(time.Millisecond))
			finished = true
			break
		}
		kills++
		if cp != 0 {
			t.Fatalf("round %d: killed mid-replay, yet the checkpoint is %d", round, cp)
		}
		if len(parts) != replayCrashWorkers || until != head {
			t.Fatalf("round %d: partition checkpoints %v with target %d; want %d partitions, target %d", round, parts, until, replayCrashWorkers, head)
		}
		lo, hi := parts[0], parts[0]
		for _, p := range parts {
			lo, hi = min(lo, p), max(hi, p)
		}
		// Every commit the child reported is in; every partition moved.
		if lo < run.reported || lo <= low {
			t.Fatalf("round %d: partition checkpoints %v; the child reported all past %d, the last round left them at %d", round, parts, run.reported, low)
		}
		// The rows hold what the partitions committed: at least the
		// orders up to the lowest checkpoint, at most those up to the
		// highest.
		if orderCount < createdUpTo(lo) || orderCount > createdUpTo(hi) {
			t.Fatalf("round %d: lifetime_spend counts %d orders; the partition checkpoints %v cover %d..%d", round, orderCount, parts, createdUpTo(lo), createdUpTo(hi))
		}
		t.Logf("round %d: killed after %d commits in %v; partitions at %v (of %d), %d orders in the table",
			round, run.commits, time.Since(start).Round(time.Millisecond), parts, head, orderCount)
		low = lo
	}

	// Finish in-process, counting what the resumed replay applies.
	start = time.Now()
	l, err = eventlog.Open(logDir, eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	db, err := projection.OpenSQLite(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := examples.New(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	var applied atomic.Int64
	pos, err := projection.Replay(context.Background(), countingSpend{orders.LifetimeSpend{}, &applied}, db, l, projection.ReplayOptions{
		Workers: replayCrashWorkers, FlushEvery: replayCrashFlush, Registry: cat.Registry,
	})
	if err != nil || pos != head {
		t.Fatalf("resumed Replay: %d, %v; want %d", pos, err, head)
	}
	// It did not start over: the orders up to the lowest partition
	// checkpoint were applied by the killed children, not again here.
	if n := applied.Load(); n > int64(nOrders)-createdUpTo(low) || n >= int64(nOrders) || !finished && n == 0 {
		t.Fatalf("the resumed replay applied %d orders; %d were left after the lowest partition checkpoint %d", n, int64(nOrders)-createdUpTo(low), low)
	}
	parts, _, cp, _ := replayState(t, db)
	if cp != head || parts != nil {
		t.Fatalf("after the replay: checkpoint %d (want %d), partition checkpoints %v left behind", cp, head, parts)
	}
	want := spendModel(t, l, cat.Registry)
	if got := spendTable(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("after %d kills lifetime_spend is\n%v\nwant\n%v", kills, got, want)
	}
	t.Logf("%d kills; the resumed replay applied %d of %d orders in %v", kills, applied.Load(), nOrders, time.Since(start).Round(time.Millisecond))
}
