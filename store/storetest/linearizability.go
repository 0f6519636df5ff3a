package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/stratadb/strata/store"
)

// The linearizability check sees each stream as a register holding its
// version. An append is a compare-and-add: if its expected version holds for
// the current version v it must succeed with version v+n, otherwise it must
// fail with Actual v and change nothing. A read (ReadStream backwards, limit
// 1) returns v. Porcupine searches for an order of the recorded operations,
// consistent with their real-time call and return times, in which every
// outcome is what this model allows; streams are independent, so the history
// is checked per stream.

type linInput struct {
	stream string
	read   bool
	exp    store.ExpectedVersion // appends
	n      uint64                // events appended
}

type linOutput struct {
	ok      bool   // the append succeeded
	version uint64 // read: the version read; append: the new version, or Actual on failure
}

var streamModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byStream := map[string][]porcupine.Operation{}
		for _, op := range history {
			s := op.Input.(linInput).stream
			byStream[s] = append(byStream[s], op)
		}
		var out [][]porcupine.Operation
		for _, s := range slices.Sorted(maps.Keys(byStream)) {
			out = append(out, byStream[s])
		}
		return out
	},
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		v, in, out := state.(uint64), input.(linInput), output.(linOutput)
		switch {
		case in.read:
			return out.version == v, v
		case in.exp.Check(v):
			return out.ok && out.version == v+in.n, v + in.n
		default:
			return !out.ok && out.version == v, v
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		switch {
		case in.read:
			return fmt.Sprintf("read(%s) -> %d", in.stream, out.version)
		case out.ok:
			return fmt.Sprintf("append(%s, %v, %d) -> version %d", in.stream, in.exp, in.n, out.version)
		default:
			return fmt.Sprintf("append(%s, %v, %d) -> wrong version, actual %d", in.stream, in.exp, in.n, out.version)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprintf("version %d", state.(uint64)) },
}

// testLinearizability runs random appends with right, stale and wrong
// expected versions and reads of stream versions from many goroutines on a
// few streams, then checks the history with porcupine. It also checks that
// the acknowledged appends cover the log's positions densely, without
// overlap, in version order per stream.
func testLinearizability(t *testing.T, h Harness) {
	s := newStore(t, h)
	ctx := testContext(t)
	const clients = 16
	opsPerClient := scale(80)
	streams := []string{"lin-a", "lin-b", "lin-c"}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	type appendDone struct {
		stream string
		res    store.AppendResult
		n      uint64
	}
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		appends []appendDone
		wg      sync.WaitGroup
	)
	begin := time.Now()
	now := func() int64 { return int64(time.Since(begin)) }
	record := func(client int, in linInput, call int64, out linOutput) {
		ret := now()
		mu.Lock()
		history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		mu.Unlock()
	}
	read := func(client int, stream string) bool {
		call := now()
		v, err := streamVersion(ctx, s, stream)
		if err != nil {
			t.Errorf("client %d: reading the version of %q: %v", client, stream, err)
			return false
		}
		record(client, linInput{stream: stream, read: true}, call, linOutput{version: v})
		return true
	}

	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			known := map[string]uint64{} // this client's last view of each stream
			for range opsPerClient {
				stream := streams[rng.IntN(len(streams))]
				var exp store.ExpectedVersion
				switch r := rng.IntN(100); {
				case r < 30:
					if !read(c, stream) {
						return
					}
					continue
				case r < 60:
					exp = store.Exactly(known[stream]) // right unless someone appended since
				case r < 70:
					exp = store.Exactly(known[stream] + 1) // wrong unless someone appended since
				case r < 78:
					exp = store.NoStream
				case r < 90:
					exp = store.StreamExists
				default:
					exp = store.Any
				}
				in := linInput{stream: stream, exp: exp, n: uint64(rng.IntN(3) + 1)}
				call := now()
				res, err := s.Append(ctx, stream, exp, newEvents(int(in.n), "lin")...)
				var wev *store.WrongExpectedVersionError
				switch {
				case err == nil:
					record(c, in, call, linOutput{ok: true, version: res.Version})
					mu.Lock()
					appends = append(appends, appendDone{stream, res, in.n})
					mu.Unlock()
					known[stream] = res.Version
				case errors.As(err, &wev):
					record(c, in, call, linOutput{version: wev.Actual})
					known[stream] = wev.Actual
				default:
					t.Errorf("client %d: Append(%q, %v): %v", c, stream, exp, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, stream := range streams { // a final read of each stream closes the history
		read(clients, stream)
	}
	if t.Failed() {
		t.FailNow()
	}

	checkStart := time.Now()
	result, info := porcupine.CheckOperationsVerbose(streamModel, history, 30*time.Second)
	t.Logf("%d operations, %d appends acknowledged, checked in %v", len(history), len(appends), time.Since(checkStart))
	switch result {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatalf("porcupine could not decide within its timeout (seed %d)", seed)
	default:
		msg := fmt.Sprintf("history of %d operations is not linearizable (seed %d)", len(history), seed)
		if f, err := os.CreateTemp("", "storetest-linearizability-*.html"); err == nil {
			if porcupine.Visualize(streamModel, info, f) == nil {
				msg += "; visualization in " + f.Name()
			}
			f.Close()
		}
		t.Fatal(msg)
	}

	// Positions: the acknowledged appends tile 1..Head, and within a stream
	// later versions have later positions.
	slices.SortFunc(appends, func(a, b appendDone) int { return cmp.Compare(a.res.FirstPosition, b.res.FirstPosition) })
	next := uint64(1)
	last := map[string]appendDone{}
	for _, a := range appends {
		if a.res.FirstPosition != next || a.res.LastPosition != next+a.n-1 {
			t.Fatalf("append of %d events to %q acknowledged at positions %d..%d, want %d..%d (positions must be dense and not overlap)",
				a.n, a.stream, a.res.FirstPosition, a.res.LastPosition, next, next+a.n-1)
		}
		if p, ok := last[a.stream]; ok && a.res.Version <= p.res.Version {
			t.Fatalf("%q: version %d at positions %d..%d, after version %d at %d..%d", a.stream,
				a.res.Version, a.res.FirstPosition, a.res.LastPosition, p.res.Version, p.res.FirstPosition, p.res.LastPosition)
		}
		last[a.stream] = a
		next = a.res.LastPosition + 1
	}
	wantHead(t, s, next-1, "after the linearizability run")
}
