package eventlog

import (
	"sync"
	"testing"

	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/store/storetest"
)

// TestConformance runs the shared store suite against the embedded log, with
// small segments so that reads and subscriptions cross segment boundaries.
func TestConformance(t *testing.T) {
	var dirs sync.Map // store.Store → its directory
	open := func(t *testing.T, dir string) store.Store {
		l, err := Open(dir, Options{SegmentSize: 64 << 10, Durability: SyncNone})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		dirs.Store(l, dir)
		return l
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store { return open(t, t.TempDir()) },
		Reopen: func(t *testing.T, closed store.Store) store.Store {
			dir, _ := dirs.Load(closed)
			return open(t, dir.(string))
		},
		Features: storetest.Features{Reopen: true, MaxEventSize: defaultMaxEventSize},
	})
}
