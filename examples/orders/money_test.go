package orders

import (
	"fmt"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/stratadb/strata/num"
)

// addAmount's sums equal shopspring/decimal's for any mix of amounts: short
// ones (num.Dec's int64 path), long or huge ones (its decimal path), sums
// that overflow int64 millionths, quoted and bare, partial sums merged.
// num's own tests check Dec against decimal in detail; this one checks the
// way the projection uses it.
func TestAddAmountMatchesDecimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s num.Dec
		want := decimal.Zero
		for range rapid.IntRange(0, 30).Draw(t, "n") {
			intPart := rapid.OneOf(rapid.Uint64Range(0, 999), rapid.Uint64Range(1e12, 9_223_372_000_000), rapid.Uint64Range(0, 1<<63)).Draw(t, "int")
			frac := rapid.StringMatching(`[0-9]{0,9}`).Draw(t, "frac")
			text := fmt.Sprint(intPart)
			if frac != "" {
				text += "." + frac
			}
			if rapid.Bool().Draw(t, "neg") {
				text = "-" + text
			}
			raw := text
			if rapid.Bool().Draw(t, "quoted") {
				raw = `"` + text + `"`
			}
			var err error
			if s, err = addAmount(s, []byte(raw)); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			want = want.Add(decimal.RequireFromString(text))
			if rapid.Bool().Draw(t, "merge") { // a partial sum of the same amount, merged
				other, err := addAmount(num.Dec{}, []byte(raw))
				if err != nil {
					t.Fatal(err)
				}
				s = s.Add(other)
				want = want.Add(decimal.RequireFromString(text))
			}
		}
		if got := s.Decimal(); !got.Equal(want) || s.String() != want.String() {
			t.Fatalf("sum %s, want %s", s, want)
		}
	})
}

func TestAddAmountRefusesWhatIsNotANumber(t *testing.T) {
	for _, raw := range []string{``, `"abc"`, `true`, `"1.2.3"`, `{}`, `"--1"`} {
		sum := num.FromInt(5)
		sum, err := addAmount(sum, []byte(raw))
		if err == nil || sum.String() != "5" {
			t.Errorf("%s: %s, %v", raw, sum, err)
		}
	}
	var s num.Dec
	for _, raw := range []string{`null`, `"1e3"`, `2E-2`} {
		var err error
		if s, err = addAmount(s, []byte(raw)); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
	if s, _ = addAmount(s, nil); s.String() != "1000.02" {
		t.Fatalf("sum %s", s)
	}
}
