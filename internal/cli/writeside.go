package cli

import (
	"path/filepath"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/store"
)

// withCatalog opens the log (for writing unless readOnly) and the snapshot
// store beside it, and runs fn with the examples' repositories.
func (a *app) withCatalog(readOnly bool, fn func(*examples.Catalog) error) error {
	return a.withStore(readOnly, func(s store.Store) error {
		// Snapshots only speed loads up: without them (another process
		// holds them, say) everything still works by replaying.
		// (With --server the snapshots are the server's: none here.)
		var snaps aggregate.SnapshotStore
		if a.server == "" {
			if ps, err := aggregate.OpenSnapshots(filepath.Join(a.dataDir, "snapshots")); err == nil {
				defer ps.Close()
				snaps = ps
			}
		}
		c, err := examples.New(s, snaps)
		if err != nil {
			return err
		}
		return fn(c)
	})
}
