package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/aggregate/aggregatetest"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// A tally: Add adds to it, and it refuses to go above its limit.
type (
	tallyEvent interface{ isTally() }
	Added      struct {
		N int `json:"n"`
	}
	Reset      struct{}
	tallyState struct{ Total, Adds int }
	Add        struct{ N, Limit int }
	Clear      struct{}
)

func (Added) isTally() {}
func (Reset) isTally() {}

var errOverLimit = errors.New("tally: over the limit")

var tally = aggregate.Decider[tallyState, any, tallyEvent]{
	Category: "tally",
	Version:  1,
	Evolve: func(s tallyState, e tallyEvent) tallyState {
		switch e := e.(type) {
		case Added:
			s.Total += e.N
			s.Adds++
		case Reset:
			s.Total = 0
		}
		return s
	},
	Decide: func(s tallyState, cmd any) ([]tallyEvent, error) {
		switch c := cmd.(type) {
		case Add:
			if c.Limit > 0 && s.Total+c.N > c.Limit {
				return nil, fmt.Errorf("%w: %d + %d > %d", errOverLimit, s.Total, c.N, c.Limit)
			}
			return []tallyEvent{Added{N: c.N}}, nil
		case Clear:
			if s.Total == 0 {
				return nil, nil // nothing to do
			}
			return []tallyEvent{Reset{}}, nil
		}
		return nil, fmt.Errorf("unknown command %T", cmd)
	},
}

func TestTallyDecider(t *testing.T) {
	aggregatetest.For(tally).When(Add{N: 2}).Then(t, Added{N: 2})
	aggregatetest.For(tally).Given(Added{N: 8}).When(Add{N: 3, Limit: 10}).ThenError(t, errOverLimit)
	aggregatetest.For(tally).Given(Added{N: 8}, Reset{}).When(Add{N: 3, Limit: 10}).Then(t, Added{N: 3})
	aggregatetest.For(tally).Given(Added{N: 8}).When(Clear{}).ThenState(t, tallyState{Total: 0, Adds: 1})
	aggregatetest.For(tally).When(Clear{}).Then(t)
}

// tallyRegistry registers Added at version 2: version 1 stored the amount
// as "amount".
func tallyRegistry(t *testing.T) *event.Registry {
	t.Helper()
	r := event.NewRegistry()
	rename := func(data []byte) ([]byte, error) {
		var v1 struct{ Amount int }
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(Added{N: v1.Amount})
	}
	if err := event.Register[Added](r, "tally.added", event.Version(2), event.Upcast(1, rename)); err != nil {
		t.Fatal(err)
	}
	if err := event.Register[Reset](r, "tally.reset"); err != nil {
		t.Fatal(err)
	}
	return r
}

func newTallyRepo(t *testing.T, opts aggregate.Options) (*aggregate.Repository[tallyState, any, tallyEvent], store.Store) {
	t.Helper()
	l, err := eventlog.Open(t.TempDir(), eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	repo, err := aggregate.NewRepository(l, tallyRegistry(t), tally, opts)
	if err != nil {
		t.Fatal(err)
	}
	return repo, l
}

func TestRepositoryHandlesAndLoads(t *testing.T) {
	repo, s := newTallyRepo(t, aggregate.Options{})
	ctx := context.Background()
	res, err := repo.Handle(ctx, "1", Add{N: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || res.Position != 1 || len(res.Events) != 1 || res.Events[0] != (Added{N: 5}) {
		t.Fatalf("first result = %+v", res)
	}
	if _, err := repo.Handle(ctx, "2", Add{N: 1}); err != nil {
		t.Fatal(err)
	}
	res, err = repo.Handle(ctx, "1", Add{N: 4})
	if err != nil || res.Version != 2 || res.Position != 3 {
		t.Fatalf("second result = %+v, %v", res, err)
	}
	// A refused command returns the domain error and appends nothing.
	if _, err := repo.Handle(ctx, "1", Add{N: 5, Limit: 10}); !errors.Is(err, errOverLimit) || !errors.Is(err, aggregate.ErrRejected) {
		t.Fatalf("over the limit: %v", err)
	}
	// A command that changes nothing appends nothing.
	if res, err := repo.Handle(ctx, "3", Clear{}); err != nil || res.Version != 0 || res.Position != 0 {
		t.Fatalf("no-op = %+v, %v", res, err)
	}
	if h, _ := s.Head(ctx); h != 3 {
		t.Fatalf("head = %d, want 3", h)
	}
	state, version, err := repo.Load(ctx, "1")
	if err != nil || state != (tallyState{Total: 9, Adds: 2}) || version != 2 {
		t.Fatalf("Load = %+v, %d, %v", state, version, err)
	}
	if state, version, err := repo.Load(ctx, "never"); err != nil || state != (tallyState{}) || version != 0 {
		t.Fatalf("Load of a new aggregate = %+v, %d, %v", state, version, err)
	}
}

func TestRepositoryUpcastsOldEvents(t *testing.T) {
	repo, s := newTallyRepo(t, aggregate.Options{})
	ctx := context.Background()
	// Events written by the version-1 code.
	_, err := s.Append(ctx, "tally-old", store.NoStream,
		event.Event{Type: "tally.added", Schema: 1, Data: []byte(`{"amount":7}`)},
		event.Event{Type: "tally.added", Schema: 1, Data: []byte(`{"amount":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	state, version, err := repo.Load(ctx, "old")
	if err != nil || state.Total != 10 || version != 2 {
		t.Fatalf("Load of v1 events = %+v, %d, %v", state, version, err)
	}
}

func TestRepositoryRefusesForeignAndUnknownEvents(t *testing.T) {
	repo, s := newTallyRepo(t, aggregate.Options{})
	ctx := context.Background()
	s.Append(ctx, "tally-x", store.Any, event.Event{Type: "order.created", Data: []byte(`{}`)})
	_, _, err := repo.Load(ctx, "x")
	if !errors.Is(err, event.ErrUnknownType) || !strings.Contains(err.Error(), "tally-x version 1") {
		t.Fatalf("Load with an unregistered type = %v", err)
	}
}

func TestRepositoryRetriesConflicts(t *testing.T) {
	repo, _ := newTallyRepo(t, aggregate.Options{MaxRetries: 1000})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, err := repo.Handle(ctx, "shared", Add{N: 1}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	state, version, err := repo.Load(ctx, "shared")
	if err != nil || state.Total != 200 || version != 200 {
		t.Fatalf("after concurrent commands: %+v, version %d, %v", state, version, err)
	}
}

func TestRepositoryWithoutRetriesReportsTheConflict(t *testing.T) {
	_, s := newTallyRepo(t, aggregate.Options{})
	// A store that lets another writer slip in between load and append.
	racy := &interleaving{Store: s}
	repo, err := aggregate.NewRepository[tallyState, any, tallyEvent](racy, tallyRegistry(t), tally, aggregate.Options{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = repo.Handle(context.Background(), "1", Add{N: 1})
	if !errors.Is(err, store.ErrWrongExpectedVersion) {
		t.Fatalf("Handle = %v, want a wrong expected version", err)
	}
}

// interleaving appends a competing event just before every append.
type interleaving struct{ store.Store }

func (s *interleaving) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error) {
	if _, err := s.Store.Append(ctx, stream, store.Any, event.Event{Type: "tally.reset", Data: []byte(`{}`)}); err != nil {
		return store.AppendResult{}, err
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

func TestNewRepositoryChecksItsInputs(t *testing.T) {
	_, err := aggregate.NewRepository[tallyState, any, tallyEvent](nil, nil, aggregate.Decider[tallyState, any, tallyEvent]{Category: "bad\ncat"}, aggregate.Options{})
	for _, want := range []string{"no store", "no event registry", "cannot prefix stream names", "needs Evolve and Decide"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
