package num

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// tb is what the checks need of a *testing.T or *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// canonical fails t unless d is on the int64 path exactly when its value
// fits it: at most six decimals, millionths in (-2^63, 2^63).
func canonical(t tb, d Dec) {
	t.Helper()
	m := d.Decimal().Shift(microDigits)
	fits := m.IsInteger() && m.BigInt().IsInt64() && m.BigInt().Int64() != math.MinInt64
	switch {
	case d.big == nil && d.micro == math.MinInt64:
		t.Fatalf("%s: micro is MinInt64", d)
	case d.big != nil && d.micro != 0:
		t.Fatalf("%s: micro %d beside the decimal path", d, d.micro)
	case fits != (d.big == nil):
		t.Fatalf("%s: on the decimal path %v, fits int64 millionths %v", d, d.big != nil, fits)
	}
}

// same fails t unless d has want's value and text.
func same(t tb, what string, d Dec, want decimal.Decimal) {
	t.Helper()
	if !d.Decimal().Equal(want) || d.String() != want.String() {
		t.Fatalf("%s = %s, want %s", what, d, want)
	}
	canonical(t, d)
}

// numberText draws the text of a decimal number: short and long integer
// parts (some beyond int64 millionths), up to nine decimals, sometimes an
// exponent, a sign, a bare point.
func numberText() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		intPart := rapid.OneOf(
			rapid.StringMatching(`[0-9]{1,3}`),
			rapid.StringMatching(`[1-9][0-9]{11,13}`), // around the int64 limit of 9223372036854.775807
			rapid.StringMatching(`[0-9]{15,30}`),
			rapid.Just("9223372036854"),
			rapid.Just(""),
		).Draw(t, "int")
		frac := rapid.StringMatching(`[0-9]{0,9}`).Draw(t, "frac")
		text := intPart
		if frac != "" || intPart == "" {
			text += "." + frac
			if intPart == "" && frac == "" {
				text += "0"
			}
		} else if rapid.IntRange(0, 9).Draw(t, "point") == 0 {
			text += "." // "1." is a number
		}
		if rapid.IntRange(0, 9).Draw(t, "exp?") == 0 {
			text += fmt.Sprintf("e%d", rapid.IntRange(-12, 12).Draw(t, "exp"))
		}
		return rapid.SampledFrom([]string{"", "", "-", "+"}).Draw(t, "sign") + text
	})
}

// decs draws a Dec (and its value as a decimal.Decimal): parsed text, or
// millionths anywhere in int64 (sums of which overflow).
func decs() *rapid.Generator[Dec] {
	return rapid.OneOf(
		rapid.Custom(func(t *rapid.T) Dec {
			d, err := Parse(numberText().Draw(t, "text"))
			if err != nil {
				t.Fatal(err)
			}
			return d
		}),
		rapid.Map(rapid.Int64(), FromMicro),
		rapid.Map(rapid.Int64Range(-1e6, 1e6), FromMicro),
		rapid.Map(rapid.Int64(), FromInt),
	)
}

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" for an error
		big  bool   // on the decimal path
	}{
		{"12.50", "12.5", false},
		{"-0.5", "-0.5", false},
		{"0", "0", false},
		{"-0", "0", false},
		{"+1", "1", false},
		{"1.", "1", false}, // decimal accepts a trailing point
		{".5", "0.5", false},
		{"-.5", "-0.5", false},
		{"0.000001", "0.000001", false},
		{"100", "100", false},
		{"007.10", "7.1", false},
		{"000000000000000000000000001.5", "1.5", false},

		// Exponents and more than six decimals go through decimal, and
		// come back to int64 when they fit.
		{"1e3", "1000", false},
		{"2E-2", "0.02", false},
		{"1.5e-7", "0.00000015", true},
		{"0.1234567", "0.1234567", true},
		{"1.0000000", "1", false},
		{"1.00000000000000000000", "1", false},
		{"-9223372036854.7758070000000", "-9223372036854.775807", false},
		{"9223372036854.7758080000000", "9223372036854.775808", true},
		{"0.00000000000000000001", "0.00000000000000000001", true},
		{"100000000000000000000e-20", "1", false},
		{"−1.5", "-1.5", false}, // U+2212, as decimal

		// The int64 limits: millionths in (-2^63, 2^63).
		{"9223372036854.775807", "9223372036854.775807", false},
		{"9223372036854.775808", "9223372036854.775808", true},
		{"-9223372036854.775807", "-9223372036854.775807", false},
		{"-9223372036854.775808", "-9223372036854.775808", true}, // MinInt64 millionths
		{"123456789012345678", "123456789012345678", true},       // 18 digits
		{"12345678901234567890123.5", "12345678901234567890123.5", true},

		// Not numbers.
		{"", "", false},
		{"-", "", false},
		{"+", "", false},
		{".", "", false},
		{"-.", "", false},
		{"1.2.3", "", false},
		{"--1", "", false},
		{".-5", "", false},
		{" 1", "", false},
		{"1 ", "", false},
		{"1,5", "", false},
		{"0x1", "", false},
		{"1e", "", false},
		{"e3", "", false},
		{"1e10001", "", false}, // beyond decimal.MaxDecodeExponent
		{"abc", "", false},
	}
	for _, c := range cases {
		d, err := Parse(c.in)
		want, werr := decimal.NewFromString(c.in)
		if (err == nil) != (werr == nil) {
			t.Errorf("Parse(%q): error %v, decimal's %v", c.in, err, werr)
			continue
		}
		if c.want == "" {
			if err == nil {
				t.Errorf("Parse(%q) = %s, want an error", c.in, d)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if d.String() != c.want || (d.big != nil) != c.big {
			t.Errorf("Parse(%q) = %s (decimal path %v), want %s (%v)", c.in, d, d.big != nil, c.want, c.big)
		}
		same(t, c.in, d, want)
	}
}

func TestParseJSON(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" for an error
	}{
		{`12.5`, "12.5"},
		{`"12.50"`, "12.5"},
		{`-0.5`, "-0.5"},
		{`"-0.5"`, "-0.5"},
		{`"1e3"`, "1000"},
		{`2E-2`, "0.02"},
		{`1.`, "1"}, // lenient, as decimal
		{`".5"`, "0.5"},
		{`"0.1234567"`, "0.1234567"},
		{`123456789012345678901234567890.1234567`, "123456789012345678901234567890.1234567"},
		{`"\u0031\u0032.5"`, "12.5"}, // escapes are decoded
		{`"\u22121"`, "-1"},          // to U+2212, which decimal reads as a minus
		{`null`, ""},
		{`"null"`, ""},
		{`true`, ""},
		{`{}`, ""},
		{`[1]`, ""},
		{`""`, ""},
		{`"`, ""},
		{`"1`, ""},
		{`1"`, ""},
		{`"1\"`, ""},  // not a JSON string
		{`"\t1"`, ""}, // a tab, then 1
		{`"\x31"`, ""},
		{`"abc"`, ""},
		{` 1`, ""},
	}
	for _, c := range cases {
		d, err := ParseJSON([]byte(c.in))
		if c.want == "" {
			if err == nil {
				t.Errorf("ParseJSON(%s) = %s, want an error", c.in, d)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseJSON(%s): %v", c.in, err)
			continue
		}
		if d.String() != c.want {
			t.Errorf("ParseJSON(%s) = %s, want %s", c.in, d, c.want)
		}
		canonical(t, d)
	}
	if _, err := ParseJSON([]byte("null")); err != ErrNull {
		t.Errorf("ParseJSON(null): %v, want ErrNull", err)
	}
}

// Parse reads any number as decimal does, and String's text reads back.
func TestParseMatchesDecimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		text := numberText().Draw(t, "text")
		d, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		same(t, text, d, decimal.RequireFromString(text))
		back, err := Parse(d.String())
		if err != nil || !back.Equal(d) {
			t.Fatalf("Parse(%q) = %s, %v; want %s", d.String(), back, err, d)
		}
		for _, raw := range []string{text, `"` + text + `"`} {
			j, err := ParseJSON([]byte(raw))
			if err != nil || !j.Equal(d) {
				t.Fatalf("ParseJSON(%s) = %s, %v; want %s", raw, j, err, d)
			}
		}
	})
}

func TestArithmeticMatchesDecimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := decs().Draw(t, "a"), decs().Draw(t, "b")
		canonical(t, a)
		canonical(t, b)
		x, y := a.Decimal(), b.Decimal()
		same(t, "a+b", a.Add(b), x.Add(y))
		same(t, "a-b", a.Sub(b), x.Sub(y))
		same(t, "-a", a.Neg(), x.Neg())
		same(t, "a+b-b", a.Add(b).Sub(b), x)
		if got, want := a.Cmp(b), x.Cmp(y); got != want {
			t.Fatalf("Cmp(%s, %s) = %d, want %d", a, b, got, want)
		}
		if got, want := a.Equal(b), x.Equal(y); got != want {
			t.Fatalf("Equal(%s, %s) = %v, want %v", a, b, got, want)
		}
		if a.Cmp(a) != 0 || !a.Equal(a) {
			t.Fatalf("%s differs from itself", a)
		}
		if a.Sign() != x.Sign() || a.IsZero() != x.IsZero() {
			t.Fatalf("%s: Sign %d, IsZero %v", a, a.Sign(), a.IsZero())
		}
		if buf, _ := a.AppendText([]byte("x")); string(buf) != "x"+x.String() {
			t.Fatalf("AppendText: %s, want x%s", buf, x)
		}
	})
}

// A sum keeps its value through any run of additions and subtractions,
// however far it strays from int64, and comes back to it.
func TestSumsComeBack(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		vals := rapid.SliceOfN(decs(), 1, 40).Draw(t, "vals")
		var sum Dec
		want := decimal.Zero
		for _, v := range vals {
			sum, want = sum.Add(v), want.Add(v.Decimal())
			same(t, "sum", sum, want)
		}
		for _, v := range vals {
			sum = sum.Sub(v)
		}
		if !sum.IsZero() || sum.big != nil {
			t.Fatalf("sum minus its terms = %s (decimal path %v)", sum, sum.big != nil)
		}
	})
}

func TestLimits(t *testing.T) {
	top, one := FromMicro(math.MaxInt64), FromMicro(1)
	if top.big != nil {
		t.Fatal("MaxInt64 millionths are on the decimal path")
	}
	over := top.Add(one)
	if over.big == nil || over.String() != "9223372036854.775808" {
		t.Fatalf("MaxInt64+1 millionths = %s (decimal path %v)", over, over.big != nil)
	}
	if back := over.Sub(one); back.big != nil || !back.Equal(top) {
		t.Fatalf("back = %s", back)
	}
	low := FromMicro(math.MinInt64)
	if low.big == nil || low.String() != "-9223372036854.775808" {
		t.Fatalf("MinInt64 millionths = %s", low)
	}
	if got := top.Neg().Sub(one); got.big == nil || !got.Equal(low) {
		t.Fatalf("-MaxInt64-1 millionths = %s", got)
	}
	if got := low.Neg(); got.Cmp(top) != 1 {
		t.Fatalf("-MinInt64 millionths = %s", got)
	}
	if FromInt(9223372036854).big != nil || FromInt(9223372036855).big == nil || FromInt(math.MinInt64).String() != "-9223372036854775808" {
		t.Fatal("FromInt limits")
	}
	var zero Dec
	if !zero.IsZero() || zero.String() != "0" || zero.Sign() != 0 || !zero.Equal(FromInt(0)) || !zero.Equal(FromDecimal(decimal.New(0, -20))) {
		t.Fatal("the zero value is not 0")
	}
}

func TestFromIntMatchesDecimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Int64().Draw(t, "n")
		same(t, "FromInt", FromInt(n), decimal.NewFromInt(n))
		same(t, "FromMicro", FromMicro(n), decimal.New(n, -microDigits))
		d := decimal.New(n, rapid.Int32Range(-30, 30).Draw(t, "exp"))
		same(t, "FromDecimal", FromDecimal(d), d)
	})
}

func TestDivInt(t *testing.T) {
	cases := []struct {
		d      string
		n      int64
		places int32
		want   string
	}{
		{"10", 3, DivisionPlaces, "3.3333333333333333"},
		{"20", 3, DivisionPlaces, "6.6666666666666667"},
		{"13.5", 3, DivisionPlaces, "4.5"},
		{"1", 2, 0, "1"},   // half away from zero
		{"-1", 2, 0, "-1"}, // likewise
		{"1", -2, 0, "-1"},
		{"0.9", 2, 0, "0"},
		{"25", 1, -1, "30"},
		{"24.99", 1, -1, "20"},
		{"1", 3, 6, "0.333333"},
		{"2", 3, 6, "0.666667"},
		{"1", 8, 2, "0.13"},
		{"9223372036854.775807", 1, 0, "9223372036855"}, // rounds beyond int64 millionths
		{"5", math.MinInt64, 0, "0"},
	}
	for _, c := range cases {
		d := must(Parse(c.d))
		got := d.DivInt(c.n, c.places)
		if got.String() != c.want {
			t.Errorf("%s.DivInt(%d, %d) = %s, want %s", c.d, c.n, c.places, got, c.want)
		}
		canonical(t, got)
	}
	defer func() {
		if recover() == nil {
			t.Error("DivInt(0) did not panic")
		}
	}()
	FromInt(1).DivInt(0, 2)
}

func TestDivIntMatchesDecimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := decs().Draw(t, "d")
		n := rapid.OneOf(rapid.Int64Range(-1000, 1000), rapid.Int64()).Filter(func(n int64) bool { return n != 0 }).Draw(t, "n")
		places := rapid.Int32Range(-15, 20).Draw(t, "places")
		same(t, fmt.Sprintf("%s.DivInt(%d, %d)", d, n, places), d.DivInt(n, places), d.Decimal().DivRound(decimal.NewFromInt(n), places))
	})
}

func TestEncodingRoundTrips(t *testing.T) {
	type snapshot struct {
		Sum, Min Dec
		Count    int
	}
	rapid.Check(t, func(t *rapid.T) {
		d := decs().Draw(t, "d")

		bin, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var b Dec
		if err := b.UnmarshalBinary(bin); err != nil || !b.Equal(d) {
			t.Fatalf("binary %x: %s, %v; want %s", bin, b, err, d)
		}
		canonical(t, b)

		js, err := json.Marshal(d)
		if err != nil || string(js) != `"`+d.String()+`"` {
			t.Fatalf("JSON %s, %v", js, err)
		}
		var j Dec
		if err := json.Unmarshal(js, &j); err != nil || !j.Equal(d) {
			t.Fatalf("JSON %s: %s, %v", js, j, err)
		}

		var buf bytes.Buffer
		in := snapshot{Sum: d, Min: d.Neg(), Count: 3}
		if err := gob.NewEncoder(&buf).Encode(in); err != nil {
			t.Fatal(err)
		}
		var out snapshot
		if err := gob.NewDecoder(&buf).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if !out.Sum.Equal(in.Sum) || !out.Min.Equal(in.Min) || out.Count != 3 {
			t.Fatalf("gob: %+v, want %+v", out, in)
		}
	})
}

func TestUnmarshal(t *testing.T) {
	var v struct{ A, B, C Dec }
	v.B = FromInt(7)
	if err := json.Unmarshal([]byte(`{"A": "12.50", "B": null, "C": 1e30}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A.String() != "12.5" || v.B.String() != "7" || v.C.String() != "1000000000000000000000000000000" {
		t.Fatalf("%s %s %s", v.A, v.B, v.C)
	}
	if err := json.Unmarshal([]byte(`{"A": true}`), &v); err == nil {
		t.Fatal("true unmarshaled")
	}
	for _, bad := range [][]byte{nil, {tagMicro}, {tagMicro, 0x80}, {tagMicro, 2, 0}, {tagDecimal, 0}, {7, 0}, append([]byte{tagMicro}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)} {
		var d Dec
		if err := d.UnmarshalBinary(bad); err == nil {
			t.Errorf("UnmarshalBinary(%x) = %s", bad, d)
		}
	}
}

var sink Dec

// The int64 path does not allocate.
func TestFastPathDoesNotAllocate(t *testing.T) {
	a, b := must(Parse("12.5")), must(Parse("-0.000003"))
	raw, quoted := []byte("1234.56"), []byte(`"-99.99"`)
	buf := make([]byte, 0, 64)
	cmp := 0
	for name, f := range map[string]func(){
		"Add":        func() { sink = a.Add(b) },
		"Sub":        func() { sink = a.Sub(b) },
		"Neg":        func() { sink = a.Neg() },
		"Cmp":        func() { cmp += a.Cmp(b) },
		"Equal":      func() { _ = a.Equal(b) },
		"Parse":      func() { sink, _ = Parse("-12.50") },
		"ParseJSON":  func() { sink, _ = ParseJSON(raw) },
		"quoted":     func() { sink, _ = ParseJSON(quoted) },
		"DivInt":     func() { sink = a.DivInt(7, 6) },              // 1.785714
		"exact":      func() { sink = a.DivInt(5, DivisionPlaces) }, // 2.5
		"AppendText": func() { buf, _ = a.AppendText(buf[:0]) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per run", name, n)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ExampleDec() {
	var sum Dec
	for _, amount := range []string{`12.50`, `"0.99"`, `"1e3"`, `-0.49`} {
		d, err := ParseJSON([]byte(amount))
		if err != nil {
			panic(err)
		}
		sum = sum.Add(d)
	}
	fmt.Println(sum, sum.DivInt(4, DivisionPlaces), sum.DivInt(3, DivisionPlaces))
	// Output: 1013 253.25 337.6666666666666667
}
