package server

import (
	"net/http/httptest"
	"testing"

	"github.com/stratadb/strata/client"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
	"github.com/stratadb/strata/store/storetest"
)

// The Go client over the HTTP API over the embedded log is a store.Store
// like any other: the conformance suite every backend passes.
func TestClientConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(New(Options{Store: l}))
			t.Cleanup(func() {
				hs.Close()
				l.Close()
			})
			c, err := client.New(hs.URL, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			c.Retry = 0
			return c
		},
	})
}
