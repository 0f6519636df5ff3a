package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// seed appends to the fake log in dir: three events to orders-1, two to
// users-1, interleaved.
func seed(t *testing.T, f *fakeEnv, dir string) {
	t.Helper()
	s := f.store(dir)
	ctx := context.Background()
	for i, a := range []struct{ stream, typ string }{
		{"orders-1", "order.placed"}, {"users-1", "user.joined"}, {"orders-1", "order.paid"},
		{"users-1", "user.left"}, {"orders-1", "order.shipped"},
	} {
		data := fmt.Appendf(nil, `{"n":%d}`, i+1)
		if _, err := s.Append(ctx, a.stream, store.Any, event.Event{Type: a.typ, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
}

// positions runs a read and returns the positions it printed.
func positions(t *testing.T, f *fakeEnv, args ...string) []uint64 {
	t.Helper()
	r := f.run(t, "", append([]string{"read"}, args...)...)
	if r.code != ExitOK {
		t.Fatalf("read %v: exit %d: %s", args, r.code, r.stderr)
	}
	var got []uint64
	for line := range strings.Lines(r.stdout) {
		var rec recordJSON
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, rec.Position)
	}
	return got
}

func TestReadQueries(t *testing.T) {
	f := newFakeEnv()
	dir := t.TempDir()
	seed(t, f, dir)
	tests := []struct {
		args []string
		want []uint64
	}{
		{[]string{"orders-1"}, []uint64{1, 3, 5}},
		{[]string{"orders-1", "--from", "2"}, []uint64{3, 5}},
		{[]string{"orders-1", "--backwards"}, []uint64{5, 3, 1}},
		{[]string{"orders-1", "--backwards", "--limit", "1"}, []uint64{5}},
		{[]string{"orders-1", "--backwards", "--from", "2", "--limit", "5"}, []uint64{3, 1}},
		{nil, []uint64{1, 2, 3, 4, 5}},
		{[]string{"--after", "3"}, []uint64{4, 5}},
		{[]string{"--limit", "2"}, []uint64{1, 2}},
		{[]string{"--prefix", "users-"}, []uint64{2, 4}},
		{[]string{"--type", "order.placed", "--type", "user.left"}, []uint64{1, 4}},
		{[]string{"--type", "order.paid,order.shipped", "--after", "3"}, []uint64{5}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := positions(t, f, append(tt.args, "--data", dir)...)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("positions %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadTable(t *testing.T) {
	f := newFakeEnv()
	dir := t.TempDir()
	seed(t, f, dir)
	r := f.run(t, "", "read", "--data", dir, "-o", "table", "--limit", "2")
	want := "POSITION  STREAM    VERSION  TYPE          TIME                      DATA\n" +
		"1         orders-1  1        order.placed  2025-01-02T03:04:05.600Z  {\"n\":1}\n" +
		"2         users-1   1        user.joined   2025-01-02T03:04:05.600Z  {\"n\":2}\n"
	if r.stdout != want {
		t.Errorf("got\n%s\nwant\n%s", r.stdout, want)
	}
}

// errAfter yields n records and then an error, like a log that hits a
// corrupt record mid-read.
type errAfter struct {
	memStore
	n int
}

func (e *errAfter) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		for i := range e.n {
			if !yield(event.Record{Position: uint64(i + 1), Time: time.Unix(0, 0)}, nil) {
				return
			}
		}
		yield(event.Record{}, store.ErrCorrupt)
	}
}

func TestReadErrorKeepsEarlierOutput(t *testing.T) {
	var out strings.Builder
	src := &errAfter{n: 2}
	err := readRecords(context.Background(), src, readQuery{}, newRecordWriter(&out, formatJSON, false))
	if err == nil || !strings.Contains(err.Error(), "read log: store: corrupt data") {
		t.Fatalf("err = %v", err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("%d records printed before the error, want 2", n)
	}
}
