package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/projection"
)

func newQueryCmd(a *app) *cobra.Command {
	var output string
	var atLeast uint64
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   `query "SELECT …"`,
		Short: "Run a read-only SQL query against the read models",
		Long: `Run one SQL statement against the read models: the serving version of every
projection (DATA/readmodels/NAME/vN.db), each attached under the
projection's name, so tables are found by their own names. Statements that
would write are refused. A query on a projection whose first version is still
building answers with its build progress.

Without --at-least the query answers at once; stderr says which log position
the read models reflect (the lowest checkpoint of the serving versions, as
the query saw them). With --at-least P (the position an append or command
returned) it first waits, up to --timeout, until every serving version has
applied P: the way to read your own writes.`,
		Example: `  strata query "SELECT * FROM order_summary ORDER BY order_id"
  strata query "SELECT balance FROM account_balances WHERE account = 'ada'" --at-least 42 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			return a.withQuery(cmd.Context(), atLeast, timeout, func(q *projection.QueryConn, reflects uint64) error {
				if err := runQuery(cmd.Context(), q, args[0], output, cmd.OutOrStdout()); err != nil {
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

// withQuery runs fn on a read-only connection to the serving versions,
// inside one read transaction, once each of them has applied atLeast
// (waiting up to timeout); reflects is the lowest of their checkpoints as
// that transaction sees them. Another process runs the projections
// (strata projection run), so the wait polls, opening the catalog's serving
// versions anew each time: a version that takes over meanwhile is seen.
func (a *app) withQuery(ctx context.Context, atLeast uint64, timeout time.Duration, fn func(q *projection.QueryConn, reflects uint64) error) error {
	return a.withReadModels(true, func(cat *projection.Catalog) error {
		deadline := time.Now().Add(timeout)
		for {
			reached, low, err := readmodels.QueryAtLeast(ctx, cat, atLeast, fn)
			if reached || err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("timed out after %v: the read models reflect position %d, not yet %d (is `strata projection run` running?)", timeout, low, atLeast)
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
}

func runQuery(ctx context.Context, q *projection.QueryConn, query, output string, w io.Writer) error {
	return runQueryArgs(ctx, q, query, nil, output, w)
}

// queryError refuses writes in so many words and turns a query on a
// projection that is still building into its build status.
func queryError(q *projection.QueryConn, err error) error {
	if strings.Contains(err.Error(), "readonly") || strings.Contains(err.Error(), "query_only") {
		return fmt.Errorf("refused: queries may only read (%v)", err)
	}
	return q.Explain(err)
}

func runQueryArgs(ctx context.Context, q *projection.QueryConn, query string, args []any, output string, w io.Writer) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return queryError(q, err)
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
		return queryError(q, err)
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
