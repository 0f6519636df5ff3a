// Package num owns exact decimal numbers for hot paths: Dec, a 16-byte
// value that adds, subtracts and compares money without allocating.
//
// github.com/shopspring/decimal is exact too, but every decimal.Decimal
// holds a *big.Int, so each value parsed or computed allocates; a replay or
// a stream that sums amounts over millions of events per second spends its
// time in the allocator and the collector. A Dec keeps a value with at most
// six decimals whose millionths fit an int64 (what money almost always is)
// as that int64, and everything else (more decimals, an exponent, sums that
// overflow) as a decimal.Decimal. Results are exact either way: a fast-path
// operation that would overflow or lose digits is redone on the decimal
// path.
//
// The representation is canonical: a Dec holds a decimal.Decimal only when
// its value does not fit the int64 path, and goes back to int64 as soon as
// a result fits again (a sum that overflowed comes back when amounts are
// subtracted). Compare Dec values with Cmp or Equal, not ==, which compares
// the decimal path's pointers; for the same reason a Dec is not a map key.
package num

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"

	"github.com/shopspring/decimal"
)

// Dec is an exact decimal number. Its zero value is 0. A Dec is immutable:
// copies may share their decimal path, which nothing modifies.
type Dec struct {
	// micro is the value in millionths when big is nil; it is never
	// math.MinInt64, so the fast range is symmetric and Neg cannot overflow.
	micro int64
	// big is the value when it does not fit micro (then micro is 0).
	big *decimal.Decimal
}

// microDigits is the number of decimals the int64 path holds.
const microDigits = 6

// DivisionPlaces is the number of decimals an average keeps, as in
// sum.DivInt(n, DivisionPlaces): shopspring/decimal's default
// DivisionPrecision, so a Dec average reads like a decimal.Decimal one.
const DivisionPlaces = 16

// FromInt returns n.
func FromInt(n int64) Dec {
	if hi, lo := bits.Mul64(abs(n), 1e6); hi == 0 && lo <= math.MaxInt64 {
		if n < 0 {
			return Dec{micro: -int64(lo)}
		}
		return Dec{micro: int64(lo)}
	}
	return fromDecimal(decimal.NewFromInt(n))
}

// FromMicro returns m millionths (m × 10⁻⁶): FromMicro(1_500_000) is 1.5.
func FromMicro(m int64) Dec {
	if m == math.MinInt64 {
		return fromDecimal(decimal.New(m, -microDigits))
	}
	return Dec{micro: m}
}

// FromDecimal returns d's value.
func FromDecimal(d decimal.Decimal) Dec { return fromDecimal(d) }

// Decimal returns d as a decimal.Decimal (which allocates).
func (d Dec) Decimal() decimal.Decimal {
	if d.big != nil {
		return *d.big
	}
	return decimal.New(d.micro, -microDigits)
}

// Add returns d + e.
func (d Dec) Add(e Dec) Dec {
	if d.big == nil && e.big == nil {
		s := d.micro + e.micro
		// Overflow iff both have the same sign and s's differs.
		if (d.micro^s)&(e.micro^s) >= 0 && s != math.MinInt64 {
			return Dec{micro: s}
		}
	}
	return fromDecimal(d.Decimal().Add(e.Decimal()))
}

// Sub returns d - e.
func (d Dec) Sub(e Dec) Dec {
	if d.big == nil && e.big == nil {
		s := d.micro - e.micro
		// Overflow iff the signs differ and s's differs from d's.
		if (d.micro^e.micro)&(d.micro^s) >= 0 && s != math.MinInt64 {
			return Dec{micro: s}
		}
	}
	return fromDecimal(d.Decimal().Sub(e.Decimal()))
}

// Neg returns -d.
func (d Dec) Neg() Dec {
	if d.big == nil {
		return Dec{micro: -d.micro}
	}
	n := d.big.Neg()
	return Dec{big: &n} // as far from int64 as d
}

// Cmp returns -1, 0 or +1 as d is less than, equal to or greater than e.
func (d Dec) Cmp(e Dec) int {
	if d.big == nil && e.big == nil {
		switch {
		case d.micro < e.micro:
			return -1
		case d.micro > e.micro:
			return 1
		}
		return 0
	}
	return d.Decimal().Cmp(e.Decimal())
}

// Equal reports whether d and e have the same value.
func (d Dec) Equal(e Dec) bool {
	if d.big == nil && e.big == nil {
		return d.micro == e.micro
	}
	if d.big == nil || e.big == nil {
		return false // canonical: a value has one representation
	}
	return d.big.Equal(*e.big)
}

// Sign returns -1, 0 or +1 as d is negative, zero or positive.
func (d Dec) Sign() int {
	if d.big != nil {
		return d.big.Sign()
	}
	switch {
	case d.micro < 0:
		return -1
	case d.micro > 0:
		return 1
	}
	return 0
}

// IsZero reports whether d is 0.
func (d Dec) IsZero() bool { return d.big == nil && d.micro == 0 }

// DivInt returns d / n rounded to places decimals (places may be negative:
// -2 rounds to hundreds), half away from zero: exactly what
// d.Decimal().DivRound(decimal.NewFromInt(n), places) returns. An average
// is sum.DivInt(count, DivisionPlaces). It panics if n is 0, as decimal
// does.
//
// It does not allocate when d is on the int64 path and the quotient, once
// rounded, has at most six decimals: places <= 6, or a quotient that is
// exact at six decimals (13.5 / 3).
func (d Dec) DivInt(n int64, places int32) Dec {
	if n == 0 {
		panic("num: division by zero")
	}
	if d.big == nil && places >= microDigits-18 {
		if q, ok := divMicro(d.micro, n, places); ok {
			return Dec{micro: q}
		}
	}
	return fromDecimal(d.Decimal().DivRound(decimal.NewFromInt(n), places))
}

// divMicro divides m millionths by n, rounding as DivInt does, and reports
// false when the result is not an int64 of millionths. places >= -12, so
// the rounding unit 10^(6-places) fits a uint64.
func divMicro(m, n int64, places int32) (int64, bool) {
	unit := uint64(1)
	for range microDigits - min(places, microDigits) {
		unit *= 10
	}
	um, un := abs(m), abs(n)
	hi, div := bits.Mul64(un, unit)
	var q uint64 // in units
	if hi == 0 {
		var r uint64
		q, r = um/div, um%div
		if r != 0 && places > microDigits {
			return 0, false // more than six decimals
		}
		if r >= div-r { // 2r >= div without overflow: half away from zero
			q++
		}
	} // else div > 2^64 > 2|m|: the quotient rounds to 0
	hi, v := bits.Mul64(q, unit)
	if hi != 0 || v > math.MaxInt64 {
		return 0, false
	}
	if (m < 0) != (n < 0) {
		return -int64(v), true
	}
	return int64(v), true
}

// String returns d as decimal.Decimal.String would: no exponent, no
// trailing zeros after the point ("1.9" for 1.90, "-0.5", "100").
func (d Dec) String() string {
	if d.big != nil {
		return d.big.String()
	}
	var buf [24]byte
	return string(appendMicro(buf[:0], d.micro))
}

// AppendText appends String's text to b (encoding.TextAppender); on the
// int64 path it allocates only if b must grow. The error is always nil.
func (d Dec) AppendText(b []byte) ([]byte, error) {
	if d.big != nil {
		return append(b, d.big.String()...), nil
	}
	return appendMicro(b, d.micro), nil
}

// appendMicro appends m millionths as decimal.Decimal.String would.
func appendMicro(b []byte, m int64) []byte {
	if m < 0 {
		b = append(b, '-')
	}
	u := abs(m)
	b = strconv.AppendUint(b, u/1e6, 10)
	frac := u % 1e6
	if frac == 0 {
		return b
	}
	digits := microDigits
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	b = append(b, '.')
	var tmp [microDigits]byte
	for i := digits - 1; i >= 0; i-- {
		tmp[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(b, tmp[:digits]...)
}

// fromDecimal returns x's value canonically: in int64 millionths when it
// fits, else x itself.
func fromDecimal(x decimal.Decimal) Dec {
	if m, ok := microOf(x); ok {
		return Dec{micro: m}
	}
	return Dec{big: &x}
}

// microOf returns x in millionths if x has at most six decimals (after
// trailing zeros) and its millionths fit an int64 other than MinInt64.
func microOf(x decimal.Decimal) (int64, bool) {
	if x.Sign() == 0 {
		return 0, true
	}
	// x = c × 10^exp, so x in millionths = c × 10^shift.
	shift := int64(x.Exponent()) + microDigits
	digits := int64(x.NumDigits()) // of c; c != 0
	// |c × 10^shift| has digits+shift digits; 19 may still fit an int64.
	if digits+shift > 19 || -shift >= digits {
		return 0, false // too large, or 0 < |c × 10^shift| < 1
	}
	if digits <= 18 { // the usual case, in uint64: |c| < 10^18, |shift| <= 18
		c := x.CoefficientInt64()
		u := abs(c)
		if shift >= 0 {
			hi, lo := bits.Mul64(u, pow10u[shift])
			if hi != 0 || lo > math.MaxInt64 {
				return 0, false
			}
			u = lo
		} else if p := pow10u[-shift]; u%p != 0 {
			return 0, false
		} else {
			u /= p
		}
		if c < 0 {
			return -int64(u), true
		}
		return int64(u), true
	}
	c := x.Coefficient()
	if shift >= 0 {
		c.Mul(c, new(big.Int).SetUint64(pow10u[shift]))
	} else {
		var r big.Int
		if c.QuoRem(c, new(big.Int).Exp(big.NewInt(10), big.NewInt(-shift), nil), &r); r.Sign() != 0 {
			return 0, false
		}
	}
	if !c.IsInt64() || c.Int64() == math.MinInt64 {
		return 0, false
	}
	return c.Int64(), true
}

// pow10u[n] is 10^n.
var pow10u = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// abs returns |n| as a uint64, which holds |math.MinInt64| too.
func abs(n int64) uint64 {
	if n < 0 {
		return -uint64(n)
	}
	return uint64(n)
}
