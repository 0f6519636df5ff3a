package eventlog

import (
	"context"
	"testing"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

func TestQuickSmoke(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := l.Append(ctx, "a-1", store.NoStream, event.Event{Type: "x", Data: []byte(`{"a":1}`)}, event.Event{Type: "y"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	for r, err := range l.ReadStream(ctx, "a-1", store.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d %s %d %s %s", r.Position, r.Stream, r.Version, r.Type, r.Data)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for r, err := range l.ReadAll(ctx, store.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d %s %d %s %s", r.Position, r.Stream, r.Version, r.Type, r.Data)
	}
	st, _ := l.Stats(ctx)
	t.Logf("%+v", st)
	_, err = l.Append(ctx, "a-1", store.NoStream, event.Event{Type: "x"})
	t.Log(err)
}
