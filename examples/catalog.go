// Package examples gathers the runnable examples for tools: which decider
// folds which stream category, over a given store. The strata CLI uses it
// for `strata bank …`, `strata state` and `strata history`.
package examples

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/examples/bank"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/store"
)

// SnapshotEvery is the snapshot policy of the examples' repositories.
const SnapshotEvery = 1000

// Catalog holds the examples' repositories over one store.
type Catalog struct {
	Registry   *event.Registry
	Bank       *aggregate.Repository[bank.Account, bank.Command, bank.Event]
	Orders     *aggregate.Repository[orders.Order, orders.Command, orders.Event]
	inspectors map[string]aggregate.Inspector
}

// New builds the catalog over s; snaps may be nil (no snapshots).
func New(s store.Store, snaps aggregate.SnapshotStore) (*Catalog, error) {
	reg := event.NewRegistry()
	if err := errors.Join(bank.Register(reg), orders.Register(reg)); err != nil {
		return nil, err
	}
	opts := aggregate.Options{SnapshotEvery: SnapshotEvery}
	if snaps != nil {
		opts.Snapshots = snaps
	}
	bankRepo, err := aggregate.NewRepository(s, reg, bank.Decider, opts)
	if err != nil {
		return nil, err
	}
	orderRepo, err := aggregate.NewRepository(s, reg, orders.Decider, opts)
	if err != nil {
		return nil, err
	}
	c := &Catalog{Registry: reg, Bank: bankRepo, Orders: orderRepo, inspectors: map[string]aggregate.Inspector{}}
	for _, in := range []aggregate.Inspector{bankRepo.Inspect(), orderRepo.Inspect()} {
		c.inspectors[in.Category()] = in
	}
	return c, nil
}

// Inspector returns the inspector of the stream's category (the part before
// the first "-") and the aggregate id (the rest).
func (c *Catalog) Inspector(stream string) (aggregate.Inspector, string, error) {
	category, id, ok := strings.Cut(stream, "-")
	if in, found := c.inspectors[category]; ok && found && id != "" {
		return in, id, nil
	}
	known := make([]string, 0, len(c.inspectors))
	for k := range c.inspectors {
		known = append(known, k+"-ID")
	}
	sort.Strings(known)
	return nil, "", fmt.Errorf("no decider folds stream %q: streams are named CATEGORY-ID, and the known categories are %s", stream, strings.Join(known, ", "))
}
