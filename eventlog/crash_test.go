package eventlog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// The crash test runs this test binary again as a child that appends with
// fsync and prints every acknowledgement, kills it with SIGKILL at a random
// moment, and checks that the reopened log holds every acknowledged event.
const crashChildEnv = "STRATA_CRASH_CHILD_DIR"

type ack struct {
	Stream   string   `json:"s"`
	Version  uint64   `json:"v"`
	Position uint64   `json:"p"`
	IDs      []string `json:"ids"`
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	if dir := os.Getenv(unsyncedChildEnv); dir != "" {
		unsyncedChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const unsyncedChildEnv = "STRATA_UNSYNCED_CHILD_DIR"

// unsyncedChild appends without fsync, lets the index persist those records
// (so the index has seen positions that were never synced), damages the
// last one as a power cut might, and dies without closing.
func unsyncedChild(dir string) {
	l, err := Open(dir, Options{Durability: SyncNone, SegmentSize: 1 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	for i := range 10 {
		if _, err := l.Append(context.Background(), "s", store.Any, event.Event{Type: "t", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			os.Exit(4)
		}
	}
	l.flushIndex()
	if err := l.db.Flush(); err != nil {
		os.Exit(5)
	}
	// Scramble the last record's payload in place.
	l.w.f.WriteAt([]byte{0xff}, l.view.Load().end-2)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// In the relaxed durability modes the index may have seen records that were
// never fsynced; damage to those after a crash is a torn write to repair,
// not corruption to refuse.
func TestUnsyncedIndexedDamageIsATornWrite(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), unsyncedChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child did not die by SIGKILL: %v %s", err, out)
	}
	meta, err := closedIndexMeta(dir)
	if err != nil || meta.indexed != 10 || meta.synced != 0 {
		t.Fatalf("index meta after the crash = %+v, %v; the test needs indexed 10, synced 0", meta, err)
	}
	l, err := Open(dir, Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatalf("open after an unsynced crash: %v", err)
	}
	defer l.Close()
	if h, _ := l.Head(context.Background()); h != 9 {
		t.Fatalf("head = %d, want 9 (the damaged 10th append truncated)", h)
	}
}

// crashChild appends until it is killed. Small segments make it roll over.
func crashChild(dir string) {
	l, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	fmt.Fprintln(out, "ready")
	out.Flush()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				stream := fmt.Sprintf("crash-%d", (g+i)%5)
				n := 1 + i%3
				evs := make([]event.Event, n)
				ids := make([]string, n)
				for j := range evs {
					evs[j] = event.Event{ID: event.NewID(), Type: "crash.tick", Data: []byte(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i))}
					ids[j] = evs[j].ID.String()
				}
				res, err := l.Append(context.Background(), stream, store.Any, evs...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(4)
				}
				b, _ := json.Marshal(ack{Stream: stream, Version: res.Version, Position: res.FirstPosition, IDs: ids})
				mu.Lock()
				out.Write(append(b, '\n'))
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestCrashRecoveryKeepsAcknowledgedAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes")
	}
	dir := t.TempDir()
	var acks []ack
	rounds := 24
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || sc.Text() != "ready" {
			cmd.Wait()
			t.Fatalf("round %d: child did not start: %s", round, stderr.String())
		}
		killAfter := time.Duration(5+rand.IntN(60)) * time.Millisecond
		timer := time.AfterFunc(killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
		for sc.Scan() {
			var a ack
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				continue // a line cut by the kill was never a complete acknowledgement
			}
			acks = append(acks, a)
		}
		err = cmd.Wait()
		timer.Stop()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended by itself (%v): %s", round, err, stderr.String())
		}
	}
	if len(acks) == 0 {
		t.Fatal("no acknowledged appends across all rounds")
	}
	checkAcked(t, dir, acks)
}

// checkAcked reopens the log and checks every acknowledged event is at its
// position, in order, once, and the whole log verifies.
func checkAcked(t *testing.T, dir string, acks []ack) {
	t.Helper()
	ctx := context.Background()
	if _, err := Verify(ctx, dir); err != nil {
		t.Fatalf("verify before reopen: %v", err)
	}
	l, err := Open(dir, Options{Verify: VerifyAll})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	byPos := map[uint64]event.Record{}
	seen := map[event.ID]uint64{}
	versions := map[string]uint64{}
	var next uint64 = 1
	for r, err := range l.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Position != next {
			t.Fatalf("position %d follows %d", r.Position, next-1)
		}
		next++
		if p, dup := seen[r.ID]; dup {
			t.Fatalf("event %s at positions %d and %d", r.ID, p, r.Position)
		}
		seen[r.ID] = r.Position
		if versions[r.Stream]+1 != r.Version {
			t.Fatalf("stream %s: version %d follows %d", r.Stream, r.Version, versions[r.Stream])
		}
		versions[r.Stream] = r.Version
		byPos[r.Position] = r
	}
	for _, a := range acks {
		for i, id := range a.IDs {
			r, ok := byPos[a.Position+uint64(i)]
			if !ok {
				t.Fatalf("acknowledged event %s at position %d is missing (head %d)", id, a.Position+uint64(i), next-1)
			}
			if r.ID.String() != id || r.Stream != a.Stream {
				t.Fatalf("position %d holds %s in %s, acknowledged %s in %s", r.Position, r.ID, r.Stream, id, a.Stream)
			}
		}
		last := byPos[a.Position+uint64(len(a.IDs))-1]
		if last.Version != a.Version {
			t.Fatalf("acknowledged version %d of %s, log has %d", a.Version, a.Stream, last.Version)
		}
	}
	// Stream reads agree with the log after recovery and index catch-up.
	for s, v := range versions {
		var got uint64
		for r, err := range l.ReadStream(ctx, s, store.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			got++
			if r.Version != got || byPos[r.Position].ID != r.ID {
				t.Fatalf("stream %s version %d disagrees with the log", s, got)
			}
		}
		if got != v {
			t.Fatalf("stream %s: read %d events, log has %d", s, got, v)
		}
	}
	t.Logf("%d acknowledged appends, %d events in the log", len(acks), next-1)
}
