package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/projection"
)

func newQueryCmd(a *app) *cobra.Command {
	var output string
	var atLeast uint64
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   `query "SELECT …"`,
		Short: "Run a read-only SQL query against the read models",
		Long: `Run one SQL statement against the read models (DATA/readmodels.db). Statements
that would write are refused. Without --at-least the query answers at once;
stderr says which log position the read models reflect (the lowest
checkpoint). With --at-least P (the position an append or command returned)
it first waits, up to --timeout, until every projection has applied P: the
way to read your own writes.`,
		Example: `  strata query "SELECT * FROM order_summary ORDER BY order_id"
  strata query "SELECT balance FROM account_balances WHERE account = 'ada'" --at-least 42 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			return a.withQueryDB(func(db *sql.DB) error {
				reflects, err := waitAtLeast(cmd.Context(), db, atLeast, timeout)
				if err != nil {
					return err
				}
				if err := runQuery(cmd.Context(), db, args[0], output, cmd.OutOrStdout()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "reflects log position %d\n", reflects)
				return nil
			})
		}),
	}
	cmd.Flags().Uint64Var(&atLeast, "at-least", 0, "wait until the read models have applied this log position")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long --at-least waits")
	addOutputFlag(cmd, &output, formatTable)
	return cmd
}

// withQueryDB opens the read models for queries only.
func (a *app) withQueryDB(fn func(db *sql.DB) error) error {
	db, err := projection.OpenSQLiteQuery(a.readModelsPath())
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// waitAtLeast returns the lowest checkpoint of the projections once it is
// at least pos, waiting up to timeout. Another process runs the projections
// (strata projection run), so this polls their checkpoints.
func waitAtLeast(ctx context.Context, db *sql.DB, pos uint64, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	for {
		stored, err := projection.ListStored(ctx, db)
		if err != nil {
			return 0, err
		}
		low := uint64(0)
		for i, st := range stored {
			if st.State == projection.StateFailed && st.Position < pos {
				return 0, fmt.Errorf("projection %s failed at position %d before reaching %d", st.Name, st.Failure.Position, pos)
			}
			if i == 0 || st.Position < low {
				low = st.Position
			}
		}
		if low >= pos {
			return low, nil
		}
		if time.Now().After(deadline) {
			return low, fmt.Errorf("timed out after %v: the read models reflect position %d, not yet %d (is `strata projection run` running?)", timeout, low, pos)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return low, ctx.Err()
		}
	}
}

func runQuery(ctx context.Context, db *sql.DB, q, output string, w io.Writer) error {
	return runQueryArgs(ctx, db, q, nil, output, w)
}

func runQueryArgs(ctx context.Context, db *sql.DB, q string, args []any, output string, w io.Writer) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		if strings.Contains(err.Error(), "readonly") || strings.Contains(err.Error(), "query_only") {
			return fmt.Errorf("refused: queries may only read (%v)", err)
		}
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	var tw *tabwriter.Writer
	if output == formatTable {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if tw != nil {
			cells := make([]string, len(vals))
			for i, v := range vals {
				cells[i] = cellText(v)
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
			continue
		}
		obj := make(map[string]any, len(cols))
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok {
				obj[c] = string(b)
			} else {
				obj[c] = vals[i]
			}
		}
		if err := json.NewEncoder(w).Encode(obj); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		if strings.Contains(err.Error(), "readonly") {
			return fmt.Errorf("refused: queries may only read (%v)", err)
		}
		return err
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func cellText(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(v)
	}
	return fmt.Sprint(v)
}
