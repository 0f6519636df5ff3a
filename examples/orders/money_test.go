package orders

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// exactSum equals shopspring/decimal's sum for any mix of amounts: short
// ones (the fast path), long or huge ones (the fallback), sums that
// overflow int64 millionths, quoted and bare.
func TestExactSumMatchesDecimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s exactSum
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
			if err := s.addJSON([]byte(raw)); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			want = want.Add(decimal.RequireFromString(text))
			var other exactSum
			if rapid.Bool().Draw(t, "merge") { // a partial sum of the same amount, merged
				if err := other.addJSON([]byte(raw)); err != nil {
					t.Fatal(err)
				}
				s.merge(other)
				want = want.Add(decimal.RequireFromString(text))
			}
		}
		if got := s.Decimal(); !got.Equal(want) {
			t.Fatalf("sum %s, want %s", got, want)
		}
	})
}

func TestExactSumRefusesWhatIsNotANumber(t *testing.T) {
	for _, raw := range []string{``, `"abc"`, `true`, `"1.2.3"`, `{}`, `"--1"`} {
		var s exactSum
		if err := s.addJSON([]byte(raw)); err == nil || !strings.Contains(err.Error(), "amount") {
			t.Errorf("%s: %v", raw, err)
		}
	}
	var s exactSum
	for _, raw := range []string{`null`, `"1e3"`, `2E-2`} {
		if err := s.addJSON([]byte(raw)); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
	if got := s.Decimal().String(); got != "1000.02" {
		t.Fatalf("sum %s", got)
	}
}
