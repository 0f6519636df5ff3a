// Package storetest is the conformance suite every store.Store backend must
// pass. A backend runs it from one of its own tests, declaring what it can do
// in a Features value:
//
//	func TestConformance(t *testing.T) {
//		dirs := map[store.Store]string{}
//		storetest.Run(t, storetest.Harness{
//			New: func(t *testing.T) store.Store {
//				dir := t.TempDir()
//				l, err := eventlog.Open(dir, eventlog.Options{})
//				if err != nil {
//					t.Fatal(err)
//				}
//				dirs[l] = dir
//				return l
//			},
//			Reopen: func(t *testing.T, closed store.Store) store.Store {
//				l, err := eventlog.Open(dirs[closed], eventlog.Options{})
//				...
//			},
//			Features: storetest.Features{Reopen: true, MaxEventSize: 1 << 20},
//		})
//	}
//
// (New and Reopen are called from parallel subtests: guard a shared map with a
// mutex.)
//
// Run checks the store.Store contract as its doc comments state it:
// appends and their expected versions, atomicity, validation, idempotent
// retries, stream and log reads with every option, subscriptions across the
// history/live hand-off under concurrent appends, cancellation and Close,
// reopening, scale, and linearizability of appends and stream reads (checked
// with porcupine). Every subtest gets a fresh store. Where the contract leaves
// a choice to the backend the suite accepts every choice; such places are
// marked "unspecified" beside the check.
//
// The suite never sleeps to let a race settle: it waits on channels, bounded
// by generous timeouts that only turn a hang into a readable failure.
package storetest
