package projection

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

const crashChildEnv = "STRATA_PROJECTION_CRASH_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		projectionChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// projectionChild runs the sums projection over the log in dir until killed.
func projectionChild(dir string) {
	l, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	db, err := OpenSQLite(filepath.Join(dir, "readmodels.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	r := NewRunner(sums{}, db, l, Options{BatchSize: 1 + rand.IntN(200)})
	fmt.Println("ready")
	r.Run(context.Background())
}

// TestCrashedProjectionEqualsAScratchBuild kills a process running a
// projection at random moments, restarts it, and checks that the read
// model ends up identical to one built from scratch over the same log:
// rows and checkpoint commit together, so nothing is applied twice or lost.
func TestCrashedProjectionEqualsAScratchBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	dir := t.TempDir()
	l, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]event.Event, 100)
	for i := range 300 {
		for j := range batch {
			batch[j] = event.Event{Type: "t", Data: []byte(fmt.Sprintf(`{"n":%d}`, i*100+j))}
		}
		if _, err := l.Append(context.Background(), fmt.Sprintf("s-%d", i%17), store.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
	head, _ := l.Head(context.Background())
	l.Close()

	killed := 0
	for round := range 12 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := out.Read(buf); err != nil {
			t.Fatalf("round %d: child did not start: %v", round, err)
		}
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond) // a random moment, not a synchronisation
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		}
	}
	if killed < 10 {
		t.Fatalf("only %d of 12 rounds were killed mid-run", killed)
	}

	// Finish the crashed model, then build a fresh one from scratch.
	// Cleanups run last-registered first: the runners (started below) stop
	// before the log and the databases close.
	l, err = eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	crashed, err := OpenSQLite(filepath.Join(dir, "readmodels.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { crashed.Close() })
	before, _ := checkpoint(context.Background(), crashed, "sums")
	scratch, err := OpenSQLite(filepath.Join(t.TempDir(), "scratch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scratch.Close() })
	rc := NewRunner(sums{}, crashed, l, Options{})
	rs := NewRunner(sums{}, scratch, l, Options{})
	start(t, rc)
	start(t, rs)
	waitFor(t, rc, head)
	waitFor(t, rs, head)
	got, want := sumsTable(t, crashed), sumsTable(t, scratch)
	if !reflect.DeepEqual(got, want) || len(want) != 17 {
		t.Fatalf("after %d crashes (checkpoint %d of %d before finishing) the model differs from a scratch build:\n got  %v\n want %v", killed, before, head, got, want)
	}
	t.Logf("%d crashes; the crashed model had reached position %d of %d", killed, before, head)
}
