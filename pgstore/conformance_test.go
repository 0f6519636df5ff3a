package pgstore

import (
	"sync"
	"testing"

	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/store/storetest"
)

// TestConformance runs the shared store suite. Every subtest gets a schema
// of its own, so the subtests run in parallel against one server; Reopen
// opens a new Store on the closed one's schema.
func TestConformance(t *testing.T) {
	url := testURL(t)
	var schemas sync.Map // store.Store → its schema
	open := func(t *testing.T, schema string) store.Store {
		s, err := Open(t.Context(), url, Options{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatalf("Open(schema %s): %v", schema, err)
		}
		schemas.Store(s, schema)
		return s
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store { return open(t, newSchema(t, url)) },
		Reopen: func(t *testing.T, closed store.Store) store.Store {
			schema, ok := schemas.Load(closed)
			if !ok {
				t.Fatal("Reopen of a store this harness did not open")
			}
			return open(t, schema.(string))
		},
		Features: storetest.Features{Reopen: true, MaxEventSize: defaultMaxEventSize},
	})
}
