package projection

import (
	"database/sql"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// The C decimal functions (and PostgreSQL's, in SQL) against
// shopspring/decimal on random decimals: same value, same text.
func TestDecimalFunctionsMatchAReference(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testDecimalsMatch(t, sqliteDB(t)) })
	t.Run("postgres", func(t *testing.T) { testDecimalsMatch(t, postgresDB(t)) })
}

func testDecimalsMatch(t *testing.T, db *sql.DB) {
	gen := rapid.Custom(func(rt *rapid.T) string {
		coef := rapid.Int64Range(-1_000_000_000_000, 1_000_000_000_000).Draw(rt, "coef")
		exp := rapid.Int32Range(-12, 3).Draw(rt, "exp")
		s := decimal.New(coef, exp).String()
		switch rapid.IntRange(0, 3).Draw(rt, "style") {
		case 1: // trailing zeros, as stored money often has
			if !decimal.New(coef, exp).IsInteger() {
				s += "00"
			}
		case 2: // leading +
			if s[0] != '-' {
				s = "+" + s
			}
		}
		return s
	})
	rapid.Check(t, func(rt *rapid.T) {
		a, b := gen.Draw(rt, "a"), gen.Draw(rt, "b")
		da, db2 := decimal.RequireFromString(a), decimal.RequireFromString(b)
		for fn, want := range map[string]decimal.Decimal{"dec_add": da.Add(db2), "dec_sub": da.Sub(db2), "dec_mul": da.Mul(db2)} {
			var got string
			if err := db.QueryRow(`SELECT `+fn+`($1, $2)`, a, b).Scan(&got); err != nil {
				rt.Fatalf("%s(%s, %s): %v", fn, a, b, err)
			}
			if got != want.String() {
				rt.Fatalf("%s(%s, %s) = %s, want %s", fn, a, b, got, want.String())
			}
		}
	})
}

func TestDecimalFunctionsEdgeCases(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testDecimalEdges(t, sqliteDB(t)) })
	t.Run("postgres", func(t *testing.T) { testDecimalEdges(t, postgresDB(t)) })
}

func testDecimalEdges(t *testing.T, db *sql.DB) {
	cases := []struct{ q, want string }{
		{`SELECT dec_add('0.1', '0.2')`, "0.3"},
		{`SELECT dec_add(NULL, '1.50')`, "1.5"},
		{`SELECT dec_add(2, '0.5')`, "2.5"},
		{`SELECT dec_mul('1.5e2', '2')`, "300"},
		{`SELECT dec_sub('1', '1.000')`, "0"},
		{`SELECT dec_sub('-0.00', '0')`, "0"},
		{`SELECT dec_mul('-0.001', '0.001')`, "-0.000001"},
		{`SELECT dec_add('99999999999999999999999999.99', '0.01')`, "100000000000000000000000000"},
	}
	for _, c := range cases {
		var got string
		if err := db.QueryRow(c.q).Scan(&got); err != nil || got != c.want {
			t.Errorf("%s = %q, %v; want %q", c.q, got, err, c.want)
		}
	}
	for _, bad := range []string{`SELECT dec_add('abc', '1')`, `SELECT dec_add('1.2.3', '1')`, `SELECT dec_add('', '1')`, `SELECT dec_mul('1e', '1')`} {
		var got string
		if err := db.QueryRow(bad).Scan(&got); err == nil {
			t.Errorf("%s = %q, want an error", bad, got)
		}
	}
}
