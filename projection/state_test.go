package projection

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// waitState waits for the runner to reach state s.
func waitState(t *testing.T, r *Runner, s State) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		ch := r.Changed()
		if r.State() == s {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("runner stayed %s, want %s", r.State(), s)
		}
	}
}

// Tools in another process work on the stored state; a runner follows.
func TestStoredStateIsFollowedByTheRunner(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := ReadStored(ctx, f.db, "sums"); !errors.Is(err, ErrUnknownProjection) {
		t.Fatalf("stored state of a projection never run = %v", err)
	}
	f.append(t, "a", "t", 1)
	poison := f.append(t, "b", "poison", 0)
	r := NewRunner(sums{failOn: "poison"}, f.db, f.log, Options{Retries: 1, Backoff: time.Millisecond, PollInterval: 5 * time.Millisecond})
	start(t, r)
	waitState(t, r, StateFailed)

	st, err := ReadStored(ctx, f.db, "sums")
	if err != nil || st.State != StateFailed || st.Failure == nil || st.Failure.Position != poison.LastPosition || st.Position != poison.LastPosition-1 {
		t.Fatalf("stored = %+v, %v", st, err)
	}
	if list, err := ListStored(ctx, f.db); err != nil || len(list) != 1 || list[0].Name != "sums" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	// Skip from outside: the runner picks up and moves on.
	if err := SkipFailed(ctx, f.db, "sums", "from the CLI", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, StateRunning)
	next := f.append(t, "a", "t", 2)
	waitFor(t, r, next.LastPosition)
	if err := SkipFailed(ctx, f.db, "sums", "again", time.Now()); !errors.Is(err, ErrNotFailed) {
		t.Fatalf("skip of a running projection = %v", err)
	}
	// Pause and resume from outside.
	if err := SetPaused(ctx, f.db, "sums", true); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, StatePaused)
	paused := f.append(t, "a", "t", 3)
	if err := SetPaused(ctx, f.db, "sums", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, paused.LastPosition)
	st, _ = ReadStored(ctx, f.db, "sums")
	if !st.Active(time.Now()) {
		t.Fatalf("a running runner's heartbeat is stale: %+v", st)
	}
	if got := sumsTable(t, f.db)["a"]; got != [2]int{6, 3} {
		t.Fatalf("sums = %v", got)
	}
	var actions []string
	rows, _ := f.db.Query(`SELECT action || ': ' || detail FROM strata_projection_log ORDER BY id`)
	for rows.Next() {
		var a string
		rows.Scan(&a)
		actions = append(actions, a)
	}
	rows.Close()
	if len(actions) != 3 || !strings.HasPrefix(actions[0], "skip") || !strings.Contains(actions[0], "from the CLI") ||
		!strings.HasPrefix(actions[1], "pause") || !strings.HasPrefix(actions[2], "resume") {
		t.Fatalf("recorded actions = %q", actions)
	}
}
