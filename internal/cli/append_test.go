package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

func TestAppendIsOneCall(t *testing.T) {
	f := newFakeEnv()
	dir := t.TempDir()
	input := "{\"type\":\"a\",\"data\":1}\n{\"type\":\"b\",\"data\":2}\n{\"type\":\"c\",\"data\":3}\n"
	r := f.run(t, input, "append", "orders-1", "--data", dir)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	s := f.store(dir)
	if s.calls != 1 {
		t.Errorf("%d Append calls, want 1", s.calls)
	}
	if len(s.records) != 3 || s.records[2].Type != "c" || string(s.records[2].Data) != "3" {
		t.Errorf("records: %+v", s.records)
	}
	if !s.closed {
		t.Error("store not closed")
	}
	var got appendResultJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output %q: %v", r.stdout, err)
	}
	want := appendResultJSON{Stream: "orders-1", Version: 3, FirstPosition: 1, LastPosition: 3}
	if got != want {
		t.Errorf("output %+v, want %+v", got, want)
	}
}

func TestAppendBadInputAppendsNothing(t *testing.T) {
	f := newFakeEnv()
	dir := t.TempDir()
	input := "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"data\":1}\n{\"type\":\"d\"}\n"
	r := f.run(t, input, "append", "s", "--data", dir)
	if r.code != ExitFailure {
		t.Fatalf("exit %d, want %d", r.code, ExitFailure)
	}
	if want := "strata: stdin: line 3: missing \"type\"\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	if len(f.opened) != 0 {
		t.Errorf("log opened for bad input: %v", f.opened)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
}

func TestAppendFromFile(t *testing.T) {
	f := newFakeEnv()
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "events.json")
	os.WriteFile(file, []byte(`[{"type":"a"},{"type":"b","metadata":{"m":1}}]`), 0o644)
	r := f.run(t, "ignored stdin", "append", "s", "--data", dir, "--file", file, "-o", "table")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if want := "appended 2 events to s: version 2, positions 1..2\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if got := f.store(dir).records[1].Metadata; string(got) != `{"m":1}` {
		t.Errorf("metadata %q", got)
	}

	os.WriteFile(file, []byte("[{\"type\":\"a\"},\n{\"type\":\"b\",\"id\":\"x\"}]"), 0o644)
	r = f.run(t, "", "append", "s", "--data", dir, "-f", file)
	if want := "strata: " + file + ": event at index 1 (line 2): \"id\": event: invalid id: \"x\"\n"; r.stderr != want {
		t.Errorf("stderr %q\nwant   %q", r.stderr, want)
	}
}

func TestAppendExpectedVersion(t *testing.T) {
	f := newFakeEnv()
	dir := t.TempDir()
	steps := []struct {
		expect string
		want   store.ExpectedVersion
		code   int
	}{
		{"no-stream", store.NoStream, ExitOK},
		{"no-stream", store.NoStream, ExitFailure},
		{"1", store.Exactly(1), ExitOK},
		{"1", store.Exactly(1), ExitFailure},
		{"stream-exists", store.StreamExists, ExitOK},
		{"any", store.Any, ExitOK},
		{"4", store.Exactly(4), ExitOK},
	}
	for i, st := range steps {
		r := f.run(t, `{"type":"a"}`, "append", "s", "--data", dir, "--expect", st.expect)
		if r.code != st.code {
			t.Fatalf("step %d (--expect %s): exit %d, want %d: %s", i, st.expect, r.code, st.code, r.stderr)
		}
		if got := f.store(dir).expected[i]; got != st.want {
			t.Errorf("step %d: passed %v, want %v", i, got, st.want)
		}
	}
}

type failingAppender struct{ err error }

func (a failingAppender) Append(context.Context, string, store.ExpectedVersion, ...event.Event) (store.AppendResult, error) {
	return store.AppendResult{}, a.err
}

func TestAppendEventsKeepsSentinel(t *testing.T) {
	want := &store.WrongExpectedVersionError{Stream: "s", Expected: store.NoStream, Actual: 2}
	_, err := appendEvents(context.Background(), failingAppender{want}, "s", store.NoStream, []event.Event{{Type: "a"}})
	if !errors.Is(err, store.ErrWrongExpectedVersion) {
		t.Errorf("error %v does not match ErrWrongExpectedVersion", err)
	}
}
