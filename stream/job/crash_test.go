package job

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/stream"
)

const crashEnv = "STRATA_JOB_CRASH_DIR"

// The child of TestKillDuringJob: it runs (or resumes) the job and prints
// a line after every checkpoint.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		if err := crashChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Println("done")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fraudJob is the two reference rules' shape: per user, the count and sum
// of the last 60 s before each transaction.
func fraudJob(dir string) *Job[num.Dec, stream.Moments, stream.Moments] {
	return &Job[num.Dec, stream.Moments, stream.Moments]{
		Name: "fraud", Window: stream.Config{Kind: stream.Lookback, Size: 60_000},
		Agg: stream.CountSum{}, MaxOutOfOrder: 2000, Partitions: 2,
		Dir: dir, FlushEvery: 10_000, CheckpointEvery: 25_000,
	}
}

func crashChild(dir string) error {
	l, err := eventlog.OpenFollower(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	defer l.Close()
	j := fraudJob(filepath.Join(dir, "cp"))
	j.Progress = func(p Progress) {
		// Unbuffered: once the parent reads it, the checkpoint is in.
		if p.Checkpoint {
			os.Stdout.WriteString(fmt.Sprintf("checkpoint %d\n", p.Position))
		}
	}
	sink := &FileSink[num.Dec, stream.Moments]{Path: filepath.Join(dir, "out.jsonl")}
	defer sink.Close()
	return j.Run(context.Background(), logSource(l), sink)
}

// TestKillDuringJob kills the job's process (SIGKILL) at random points of a
// run over a million events and restarts it each time; the file it leaves
// equals the one an uninterrupted run writes, byte for byte.
func TestKillDuringJob(t *testing.T) {
	if testing.Short() {
		t.Skip("a million events; not in -short")
	}
	dir := t.TempDir()
	l := txLog(t, filepath.Join(dir, "log"), 1_000_000, 20_000)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for round := 0; ; round++ {
		if round > 60 {
			t.Fatal("the job does not finish")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of checkpoints: the child is then
		// somewhere in the next interval (folding, writing the sink or
		// the checkpoint).
		killAfter := 1 + rng.IntN(4)
		sc := bufio.NewScanner(out)
		seen, finished, killed := 0, false, false
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "done":
				finished = true
			case strings.HasPrefix(line, "checkpoint "):
				seen++
			}
			if !finished && !killed && seen >= killAfter && kills < 8 {
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
				kills++
			}
		}
		err = cmd.Wait()
		if finished {
			if err != nil {
				t.Fatalf("child finished but exited with %v: %s", err, stderr.String())
			}
			break
		}
		if !killed {
			t.Fatalf("child stopped by itself (%v): %s", err, stderr.String())
		}
	}
	if kills == 0 {
		t.Fatal("the job was never killed")
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}

	l2, err := eventlog.OpenFollower(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	want := runToFile(t, fraudJob(filepath.Join(dir, "cp-whole")), logSource(l2), filepath.Join(dir, "whole.jsonl"))
	if !bytes.Equal(got, want) {
		t.Fatalf("after %d kills the output has %d bytes, an uninterrupted run's %d: they differ", kills, len(got), len(want))
	}
	if n := bytes.Count(want, []byte("\n")); n < 900_000 {
		t.Fatalf("only %d results", n)
	}
	t.Logf("%d kills; %d result lines identical", kills, bytes.Count(want, []byte("\n")))
}
