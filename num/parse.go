package num

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/shopspring/decimal"
)

// Parse reads s as decimal.NewFromString does, with the same results and
// errors: an optional sign ('+', '-' or U+2212 '−'), digits with at most one
// point, and an optional exponent ('e' or 'E', then a signed integer of
// magnitude at most decimal.MaxDecodeExponent). So "12.50", "-0.5", "1.",
// ".5", "+1", "1e3" and "2E-2" are numbers; "", "-", ".", "1.2.3", "0x1",
// " 1" and "1e" are not.
//
// A plain number (no exponent) with at most six decimals whose millionths
// fit an int64 is read without allocating; anything else is read by
// decimal.NewFromString, then kept in int64 if its value fits ("1e3",
// "1.5000000").
func Parse(s string) (Dec, error) {
	if m, ok := parseMicro(s); ok {
		return Dec{micro: m}, nil
	}
	x, err := decimal.NewFromString(s)
	if err != nil {
		return Dec{}, err
	}
	return fromDecimal(x), nil
}

// ErrNull is ParseJSON's error for a JSON null.
var ErrNull = errors.New("num: null is not a number")

// ParseJSON reads a JSON number, or a JSON string holding one, as event data
// carries money (12.5 or "12.50"). raw is one JSON value without surrounding
// space, as encoding/json hands a json.RawMessage or an UnmarshalJSON
// method.
//
// It accepts what decimal.Decimal's UnmarshalJSON accepts, with the same
// values, except for two things. null is an error (ErrNull), not a silent
// zero: a caller for whom a missing amount counts as nothing checks for null
// first. And a string with escapes ("\u0031\u0032.5") is decoded as JSON
// before its text is parsed, where decimal rejects it. The text of a bare
// number or of a string is read by Parse, so ParseJSON is as lenient as
// decimal: "+1", ".5", "1." and "1e3" are accepted, quoted or not. Anything
// else (true, {}, "abc", "") is an error.
//
// A number or string without escapes that Parse reads without allocating
// is read by ParseJSON without allocating too.
func ParseJSON(raw []byte) (Dec, error) {
	text := raw
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		text = raw[1 : len(raw)-1]
		if bytes.IndexByte(text, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return Dec{}, fmt.Errorf("num: %s: %w", raw, err)
			}
			d, err := Parse(s)
			if err != nil {
				return Dec{}, fmt.Errorf("num: %s: %w", raw, err)
			}
			return d, nil
		}
	} else if string(raw) == "null" {
		return Dec{}, ErrNull
	}
	if m, ok := parseMicro(text); ok {
		return Dec{micro: m}, nil
	}
	x, err := decimal.NewFromString(string(text))
	if err != nil {
		return Dec{}, fmt.Errorf("num: %s: %w", raw, err)
	}
	return fromDecimal(x), nil
}

// parseMicro reads a plain decimal ("-12.345", "+1", "1.", ".5") into
// millionths. It reports false for anything else (an exponent, more than six
// decimals, millionths beyond an int64, other characters): Parse then hands
// the text to decimal.NewFromString, which accepts everything parseMicro
// does, with the same value.
func parseMicro[T string | []byte](s T) (int64, bool) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		i, neg = 1, s[0] == '-'
	}
	var v uint64
	digits, decimals := 0, -1 // decimals < 0 before the point
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			if decimals >= 0 {
				if decimals == microDigits {
					return 0, false
				}
				decimals++
			}
			d := uint64(c - '0')
			if v > (math.MaxInt64-d)/10 {
				return 0, false
			}
			v = v*10 + d
			digits++
		case c == '.' && decimals < 0:
			decimals = 0
		default:
			return 0, false
		}
	}
	if digits == 0 { // "", "-", "."
		return 0, false
	}
	for range microDigits - max(decimals, 0) {
		if v > math.MaxInt64/10 {
			return 0, false
		}
		v *= 10
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}
