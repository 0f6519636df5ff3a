package num

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/shopspring/decimal"
)

// FuzzParseJSON checks ParseJSON against decimal.Decimal's UnmarshalJSON:
// the same inputs accepted, with the same values, but for what ParseJSON
// documents: null is an error, and strings with escapes are decoded first.
func FuzzParseJSON(f *testing.F) {
	for _, seed := range []string{
		`12.5`, `"12.50"`, `-0`, `"-0.5"`, `1.`, `".5"`, `"+1"`, `1e3`, `"2E-2"`,
		`0.1234567`, `9223372036854.775807`, `"-9223372036854.775808"`,
		`123456789012345678901234567890.123456789`, `null`, `"null"`, `true`, `""`, `"`,
		`"\u0031\u0032.5"`, `"\u22121"`, `"1\"`, `"1.2.3"`, `1e10001`, `−1`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseJSON(raw)
		if string(raw) == "null" {
			if err != ErrNull {
				t.Fatalf("null: %s, %v", got, err)
			}
			return
		}
		var want decimal.Decimal
		werr := want.UnmarshalJSON(raw)
		switch {
		case werr == nil && err != nil:
			t.Fatalf("ParseJSON(%s): %v; decimal reads %s", raw, err, want)
		case werr == nil:
			same(t, string(raw), got, want)
		case err == nil:
			// Only a string with escapes, which decimal does not decode.
			var s string
			if !bytes.Contains(raw, []byte(`\`)) || json.Unmarshal(raw, &s) != nil {
				t.Fatalf("ParseJSON(%s) = %s; decimal: %v", raw, got, werr)
			}
			want, werr := decimal.NewFromString(s)
			if werr != nil {
				t.Fatalf("ParseJSON(%s) = %s; decimal reads %q: %v", raw, got, s, werr)
			}
			same(t, string(raw), got, want)
		}
	})
}
