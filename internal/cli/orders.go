package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
)

type orderResultJSON struct {
	Order    string       `json:"order"`
	Version  uint64       `json:"version"`
	Position uint64       `json:"position,omitempty"`
	State    orders.Order `json:"state"`
}

func newOrdersCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "orders",
		Short: "The order example: create, add items, ship, show",
		Long: `The order example (stream order-ID). Its OrderCreated event has three schema
versions; events of every version are read as the current one.`,
		Example: `  strata orders create o-1 --customer c-7 --tax 1.90 --shipping 4.95
  strata orders add-item o-1 A1 2 10.00
  strata orders ship o-1`,
	}
	var customer, amount, tax, shipping string
	create := &cobra.Command{
		Use:     "create ORDER",
		Short:   "Create an order",
		Example: "  strata orders create o-1 --customer c-7 --tax 1.90 --shipping 4.95",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			am, err := parseAmount(amount)
			if err != nil {
				return err
			}
			t, err := parseAmount(tax)
			if err != nil {
				return err
			}
			s, err := parseAmount(shipping)
			if err != nil {
				return err
			}
			return a.orderCommand(cmd, args[0], orders.Create{Customer: customer, Amount: am, TaxAmount: t, ShippingCst: s})
		}),
	}
	create.Flags().StringVar(&customer, "customer", "", "the customer id")
	create.Flags().StringVar(&amount, "amount", "0", "the goods' amount at checkout (items added later come on top)")
	create.Flags().StringVar(&tax, "tax", "0", "tax amount")
	create.Flags().StringVar(&shipping, "shipping", "0", "shipping cost")
	addItem := &cobra.Command{
		Use:     "add-item ORDER SKU QUANTITY PRICE",
		Short:   "Add an item to an order",
		Example: "  strata orders add-item o-1 A1 2 10.00",
		Args:    cobra.ExactArgs(4),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			qty, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil {
				return usagef("quantity %q is not a whole number", args[2])
			}
			price, err := parseAmount(args[3])
			if err != nil {
				return err
			}
			return a.orderCommand(cmd, args[0], orders.AddItem{SKU: args[1], Quantity: qty, Price: price})
		}),
	}
	ship := &cobra.Command{
		Use:     "ship ORDER",
		Short:   "Ship an order",
		Example: "  strata orders ship o-1",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.orderCommand(cmd, args[0], orders.Ship{})
		}),
	}
	show := &cobra.Command{
		Use:     "show ORDER",
		Short:   "Print an order (the fold of its events)",
		Example: "  strata orders show o-1",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withCatalog(true, func(c *examples.Catalog) error {
				o, v, err := c.Orders.Load(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if v == 0 {
					return orders.ErrNoOrder
				}
				return writeJSON(cmd.OutOrStdout(), orderResultJSON{Order: args[0], Version: v, State: o})
			})
		}),
	}
	var output string
	search := &cobra.Command{
		Use:   "search QUERY",
		Short: "Full-text search of orders by customer or product (needs the order_search projection)",
		Long: `Search the order_search read model (apply examples/order_search.yaml first).
QUERY is an SQLite FTS4 query: words, "a OR b", prefixes like "punch*", and
column filters like "customer:ada" or "products:engine".`,
		Example: `  strata projection apply examples/order_search.yaml
  strata orders search "ada engine"`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			return a.withQuery(cmd.Context(), 0, 0, func(q *projection.QueryConn, _ uint64) error {
				return runQueryArgs(cmd.Context(), q, examples.SearchOrders, []any{args[0]}, output, cmd.OutOrStdout())
			})
		}),
	}
	addOutputFlag(search, &output, formatTable)
	cmd.AddCommand(create, addItem, ship, show, local(search))
	return cmd
}

func (a *app) orderCommand(cmd *cobra.Command, id string, c orders.Command) error {
	return a.withCatalog(false, func(cat *examples.Catalog) error {
		res, err := cat.Orders.Handle(cmd.Context(), id, c)
		if err != nil {
			return err
		}
		o, _, err := cat.Orders.Load(cmd.Context(), id)
		if err != nil {
			return err
		}
		return writeJSON(cmd.OutOrStdout(), orderResultJSON{Order: id, Version: res.Version, Position: res.Position, State: o})
	})
}
