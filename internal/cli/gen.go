package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/examples/orders/gen"
	"github.com/stratadb/strata/store"
)

func newGenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate example histories into the log, for tests and benchmarks",
		Example: `  strata gen orders --events 1000000 --customers 5000
  strata --data /tmp/shop --durability none gen orders --events 100000`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newGenOrdersCmd(a), newGenTransactionsCmd(a))
	return cmd
}

type genOrdersJSON struct {
	Events       int     `json:"events"`
	Orders       int     `json:"orders"`
	LastPosition uint64  `json:"last_position"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
}

func newGenOrdersCmd(a *app) *cobra.Command {
	var (
		opts   gen.Options
		output string
	)
	cmd := &cobra.Command{
		Use:   "orders",
		Short: "Append a generated two-year order history (streams order-g1, order-g2, …)",
		Long: `Append a generated order history of the order example: one stream per order
(order-g1, order-g2, …), each written in one append: OrderCreated (schema
versions 1, 2 and 3 over the simulated two years 2024–2025), 0–4 ItemAdded
and, for about 70% of the orders, OrderShipped. Customers (cust-1 …
cust-M) are skewed: a few place many orders. Each event's metadata holds the
order's simulated time, {"at":"…"}.

Generation stops at the first order boundary at or after --events. The same
--seed, --events and --customers give the same streams. Stream names depend
only on the order number, so generating into a log that already has them
fails on the first one (use another --data).`,
		Example: `  strata gen orders --events 1000000 --customers 5000
  strata --data /tmp/shop --durability none gen orders --events 100000 --seed 7 -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.Events < 1:
				return usagef("--events %d: want at least 1", opts.Events)
			case opts.Customers < 1:
				return usagef("--customers %d: want at least 1", opts.Customers)
			case opts.Writers < 1:
				return usagef("--writers %d: want at least 1", opts.Writers)
			}
			if err := checkFormat(output); err != nil {
				return err
			}
			return a.withStore(false, func(s store.Store) error {
				start := time.Now()
				res, err := gen.Orders(cmd.Context(), s, opts)
				if err != nil {
					return err
				}
				return printGenOrders(cmd.OutOrStdout(), output, res, time.Since(start))
			})
		}),
	}
	f := cmd.Flags()
	f.IntVar(&opts.Events, "events", 100_000, "events to append (stops at the first order boundary at or after it)")
	f.IntVar(&opts.Customers, "customers", 1000, "distinct customers")
	f.Int64Var(&opts.Seed, "seed", 1, "seed of the history: the same seed gives the same orders")
	f.IntVar(&opts.Writers, "writers", 16, "concurrent appenders")
	addOutputFlag(cmd, &output, formatTable)
	return cmd
}

func printGenOrders(w io.Writer, format string, r gen.Result, elapsed time.Duration) error {
	eps := perSecond(int64(r.Events), elapsed)
	if format == formatJSON {
		return writeJSON(w, genOrdersJSON{
			Events: r.Events, Orders: r.Orders, LastPosition: r.LastPosition,
			Seconds: elapsed.Seconds(), EventsPerSec: eps,
		})
	}
	return writeKV(w, [][2]string{
		{"events", strconv.Itoa(r.Events)},
		{"orders", strconv.Itoa(r.Orders)},
		{"last position", strconv.FormatUint(r.LastPosition, 10)},
		{"elapsed", elapsed.Round(time.Millisecond).String()},
		{"events/s", fmt.Sprintf("%.0f", eps)},
	})
}
