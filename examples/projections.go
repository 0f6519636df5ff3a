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
)
