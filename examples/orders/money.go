package orders

import "github.com/stratadb/strata/num"

// addAmount adds a JSON amount (a number, or a string holding one, as event
// data carries money: 12.5 or "12.50") to sum, exactly and, for amounts
// with at most six decimals, without allocating (num.Dec). A missing (nil)
// or null amount adds nothing; on an error, sum is returned unchanged.
func addAmount(sum num.Dec, raw []byte) (num.Dec, error) {
	if raw == nil || string(raw) == "null" {
		return sum, nil
	}
	d, err := num.ParseJSON(raw)
	if err != nil {
		return sum, err
	}
	return sum.Add(d), nil
}
