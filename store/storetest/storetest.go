package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratadb/strata/store"
)

// Features declares the optional abilities of a backend. Tests that need an
// ability the backend lacks are skipped, not failed.
type Features struct {
	// Reopen: the backend keeps its data across Close and a new open
	// (Harness.Reopen). Enables the reopen tests and the check that appends
	// acknowledged before Close survive it.
	Reopen bool

	// MaxEventSize is the largest event.Event.Size() the backend accepts: an
	// event of exactly this size must be appended, one byte more must fail
	// with store.ErrEventTooLarge. 0 declares no limit and skips the size
	// tests. Must be at least 64 when set.
	MaxEventSize int
}

// Harness tells Run how to make stores of one backend.
type Harness struct {
	// New returns a new, empty, open store. Run closes it when the subtest
	// ends (Close twice must be harmless, see store.Store), before any cleanup
	// New registered itself runs, so New may use t.TempDir. Required.
	New func(t *testing.T) store.Store

	// Reopen opens again the data of closed, a store that New or Reopen
	// returned in the same test and that Run has already closed (its Close
	// returned nil). Required when Features.Reopen is set, unused otherwise.
	Reopen func(t *testing.T, closed store.Store) store.Store

	// Features declares what the backend can do.
	Features Features

	// Sequential runs the subtests one at a time instead of in parallel, for
	// backends whose stores share something (one database server, say) that
	// cannot take concurrent tests. Each subtest still gets a fresh store.
	Sequential bool
}

// conformanceTest is one subtest of the suite.
type conformanceTest struct {
	name string
	fn   func(t *testing.T, h Harness)
	// skip, when set, returns why the backend cannot run the test ("" to run).
	skip func(f Features) string
}

func needsReopen(f Features) string {
	if !f.Reopen {
		return "backend does not declare Features.Reopen"
	}
	return ""
}

func needsMaxEventSize(f Features) string {
	if f.MaxEventSize == 0 {
		return "backend declares no Features.MaxEventSize"
	}
	return ""
}

// suite lists every test, grouped; Run runs them as Group/Test subtests.
var suite = []struct {
	group string
	tests []conformanceTest
}{
	{"Append", []conformanceTest{
		{name: "Basics", fn: testAppendBasics},
		{name: "RoundTrip", fn: testAppendRoundTrip},
		{name: "CallerBuffersNotRetained", fn: testAppendCopiesBuffers},
		{name: "ExpectedVersion", fn: testExpectedVersion},
		{name: "InvalidStream", fn: testInvalidStream},
		{name: "InvalidType", fn: testInvalidType},
		{name: "NameLimits", fn: testNameLimits},
		{name: "DuplicateIDs", fn: testDuplicateIDs},
		{name: "EventTooLarge", fn: testEventTooLarge, skip: needsMaxEventSize},
	}},
	{"Idempotency", []conformanceTest{
		{name: "Exactly", fn: testIdempotentExactly},
		{name: "NoStream", fn: testIdempotentNoStream},
		{name: "Any", fn: testIdempotentAny},
		{name: "DifferentPlace", fn: testIdempotentDifferentPlace},
	}},
	{"ReadStream", []conformanceTest{
		{name: "Options", fn: testReadStreamOptions},
		{name: "NotFound", fn: testReadStreamNotFound},
	}},
	{"ReadAll", []conformanceTest{
		{name: "Empty", fn: testReadAllEmpty},
		{name: "Options", fn: testReadAllOptions},
	}},
	{"Read", []conformanceTest{
		{name: "BreakEarly", fn: testReadBreakEarly},
		{name: "AppendInsideLoop", fn: testReadAppendInsideLoop},
	}},
	{"Subscribe", []conformanceTest{
		{name: "HistoryThenLive", fn: testSubscribeHistoryThenLive},
		{name: "FromMiddle", fn: testSubscribeFromMiddle},
		{name: "EmptyStore", fn: testSubscribeEmptyStore},
		{name: "Filter", fn: testSubscribeFilter},
		{name: "Cancel", fn: testSubscribeCancel},
		{name: "AppendInsideLoop", fn: testSubscribeAppendInsideLoop},
		{name: "HandOff", fn: testSubscribeHandOff},
		{name: "Close", fn: testSubscribeClose},
	}},
	{"Concurrency", []conformanceTest{
		{name: "OptimisticRetries", fn: testOptimisticRetries},
		{name: "Linearizability", fn: testLinearizability},
	}},
	{"Scale", []conformanceTest{
		{name: "LargeAppend", fn: testLargeAppend},
		{name: "ManyStreams", fn: testManyStreams},
	}},
	{"Reopen", []conformanceTest{
		{name: "Data", fn: testReopenData, skip: needsReopen},
		{name: "Empty", fn: testReopenEmpty, skip: needsReopen},
	}},
	{"Close", []conformanceTest{
		{name: "OperationsFail", fn: testClosedOperations},
		{name: "DuringAppends", fn: testCloseDuringAppends},
	}},
}

// Run runs the conformance suite against the backend h makes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: Harness.New is nil")
	}
	if h.Features.Reopen && h.Reopen == nil {
		t.Fatal("storetest: Features.Reopen is set but Harness.Reopen is nil")
	}
	if h.Features.MaxEventSize < 0 || (h.Features.MaxEventSize > 0 && h.Features.MaxEventSize < 64) {
		t.Fatalf("storetest: Features.MaxEventSize = %d, want 0 (no limit) or at least 64", h.Features.MaxEventSize)
	}
	for _, g := range suite {
		t.Run(g.group, func(t *testing.T) {
			if !h.Sequential {
				t.Parallel()
			}
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					if !h.Sequential {
						t.Parallel()
					}
					if tc.skip != nil {
						if why := tc.skip(h.Features); why != "" {
							t.Skip(why)
						}
					}
					tc.fn(t, h)
				})
			}
		})
	}
}

// waitTimeout bounds every wait for something a store should do promptly (a
// subscriber receiving a record, Close returning). A correct store needs a
// tiny fraction of it; it only turns a hang into a failure that says where.
const waitTimeout = 30 * time.Second

// newStore returns a fresh store from h and closes it when t ends.
func newStore(t *testing.T, h Harness) store.Store {
	t.Helper()
	s := h.New(t)
	if s == nil {
		t.Fatal("storetest: Harness.New returned nil")
	}
	t.Cleanup(func() { closeAtCleanup(t, s) })
	return s
}

// reopen closes s, checking that Close succeeds, and returns the store
// Harness.Reopen makes of the same data; it is closed when t ends.
func reopen(t *testing.T, h Harness, s store.Store) store.Store {
	t.Helper()
	if err := closeWithin(s, waitTimeout); err != nil {
		t.Fatalf("Close before reopening: %v", err)
	}
	s2 := h.Reopen(t, s)
	if s2 == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	t.Cleanup(func() { closeAtCleanup(t, s2) })
	return s2
}

// closeAtCleanup closes s at the end of a test; it may have been closed
// already, so ErrClosed is fine.
func closeAtCleanup(t *testing.T, s store.Store) {
	t.Helper()
	if err := closeWithin(s, waitTimeout); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("Close at end of test: %v", err)
	}
}

var errCloseHung = errors.New("storetest: Close did not return")

// closeWithin closes s and waits at most d for Close to return.
func closeWithin(s store.Store, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return errCloseHung
	}
}

// testContext returns a context for one test that is cancelled when it ends
// and carries a deadline, so a read that hangs fails instead of blocking the
// whole run.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
