package examples

import (
	_ "embed"
)

// The examples' declarative projections, shipped as YAML (see README).
var (
	//go:embed order_summary.yaml
	OrderSummaryYAML []byte
	//go:embed account_balances.yaml
	AccountBalancesYAML []byte
	//go:embed order_search.yaml
	OrderSearchYAML []byte
	//go:embed lifetime_spend.yaml
	LifetimeSpendYAML []byte
)

// SearchOrders is the query behind `strata orders search`: orders whose
// customer or products match an FTS4 query ("ada", "A1 OR B2", "cust*").
const SearchOrders = `SELECT order_id, customer, products FROM order_search WHERE order_search MATCH ? ORDER BY order_id`

// SearchOrdersPostgres is SearchOrders on a PostgreSQL read model: a web
// search query ("ada", "A1 or B2", "\"exact phrase\"", "-excluded").
const SearchOrdersPostgres = `SELECT order_id, customer, products FROM order_search WHERE search @@ websearch_to_tsquery('simple', $1) ORDER BY order_id`
