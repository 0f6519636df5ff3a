package num

import (
	"testing"

	"github.com/shopspring/decimal"
)

var (
	benchDec     Dec
	benchDecimal decimal.Decimal
)

// BenchmarkAdd sums amounts with two decimals: Dec on its int64 path, Dec
// on its decimal path (a seven-decimal sum), and decimal.Decimal.
func BenchmarkAdd(b *testing.B) {
	amounts := []string{"12.50", "0.99", "1234.56", "-3.10", "7", "0.01", "99.99", "250.00"}
	b.Run("Dec", func(b *testing.B) {
		ds := make([]Dec, len(amounts))
		for i, a := range amounts {
			ds[i] = must(Parse(a))
		}
		var sum Dec
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sum = sum.Add(ds[i%len(ds)])
		}
		benchDec = sum
	})
	b.Run("Dec/decimal-path", func(b *testing.B) {
		ds := make([]Dec, len(amounts))
		for i, a := range amounts {
			ds[i] = must(Parse(a))
		}
		sum := must(Parse("0.0000001"))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sum = sum.Add(ds[i%len(ds)])
		}
		benchDec = sum
	})
	b.Run("decimal", func(b *testing.B) {
		ds := make([]decimal.Decimal, len(amounts))
		for i, a := range amounts {
			ds[i] = decimal.RequireFromString(a)
		}
		sum := decimal.Zero
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sum = sum.Add(ds[i%len(ds)])
		}
		benchDecimal = sum
	})
}

// BenchmarkParseJSON reads a quoted amount, as event data carries it.
func BenchmarkParseJSON(b *testing.B) {
	raw := []byte(`"1234.56"`)
	b.Run("Dec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchDec, _ = ParseJSON(raw)
		}
	})
	b.Run("decimal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = benchDecimal.UnmarshalJSON(raw)
		}
	})
}
