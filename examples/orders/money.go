package orders

import (
	"bytes"
	"fmt"
	"math/bits"

	"github.com/shopspring/decimal"
)

// exactSum adds decimal amounts exactly. Amounts with at most six decimals
// add up in int64 millionths, without allocating (shopspring/decimal
// allocates a big.Int per value, which a replay of millions of events feels);
// whatever does not fit goes to a decimal.Decimal. The sum is exact either
// way.
type exactSum struct {
	micro int64
	rest  decimal.Decimal
}

const microDigits = 6

// addJSON adds a JSON number, or a JSON string holding one, as event data
// carries money ("12.50" or 12.5). Missing (nil) and null add nothing.
func (s *exactSum) addJSON(raw []byte) error {
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if v, ok := parseMicro(raw); ok {
		if sum, ok := addInt64(s.micro, v); ok {
			s.micro = sum
			return nil
		}
	}
	var d decimal.Decimal
	if err := d.UnmarshalJSON(raw); err != nil {
		return fmt.Errorf("amount %s: %w", raw, err)
	}
	s.rest = s.rest.Add(d)
	return nil
}

// merge adds o to s.
func (s *exactSum) merge(o exactSum) {
	if sum, ok := addInt64(s.micro, o.micro); ok {
		s.micro = sum
	} else {
		s.rest = s.rest.Add(decimal.New(o.micro, -microDigits))
	}
	if !o.rest.IsZero() {
		s.rest = s.rest.Add(o.rest)
	}
}

func (s exactSum) Decimal() decimal.Decimal {
	return decimal.New(s.micro, -microDigits).Add(s.rest)
}

func addInt64(a, b int64) (int64, bool) {
	sum := a + b
	// Overflow iff a and b have the same sign and sum's differs.
	return sum, (a^sum)&(b^sum) >= 0
}

// parseMicro reads a plain decimal ("-12.345", quoted or not) into
// millionths. It reports false for anything else (an exponent, more than six
// decimals, escapes, more than 18 digits): the caller then parses it fully.
func parseMicro(raw []byte) (int64, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	neg := false
	if len(raw) > 0 && raw[0] == '-' {
		neg, raw = true, raw[1:]
	}
	var v uint64
	digits, decimals := 0, -1
	for _, c := range raw {
		switch {
		case c >= '0' && c <= '9':
			if decimals >= 0 {
				if decimals == microDigits {
					return 0, false
				}
				decimals++
			}
			if digits++; digits > 18 {
				return 0, false
			}
			v = v*10 + uint64(c-'0')
		case c == '.' && decimals < 0:
			decimals = 0
		default:
			return 0, false
		}
	}
	if digits == 0 || decimals == 0 { // "", "-", "1."
		return 0, false
	}
	for range microDigits - max(decimals, 0) {
		hi, lo := bits.Mul64(v, 10)
		if hi != 0 || lo > 1<<63-1 {
			return 0, false
		}
		v = lo
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}
