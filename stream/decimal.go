package stream

import "github.com/stratadb/strata/num"

// Sum adds exact decimals.
type Sum struct{}

func (Sum) Init() num.Dec                               { return num.Dec{} }
func (Sum) Add(acc num.Dec, _ int64, v num.Dec) num.Dec { return acc.Add(v) }
func (Sum) Merge(a, b num.Dec) num.Dec                  { return a.Add(b) }
func (Sum) Retract(a, b num.Dec) num.Dec                { return a.Sub(b) }
func (Sum) Result(acc num.Dec) num.Dec                  { return acc }

// Extreme is the accumulator of Min and Max: whether any value came, and
// the extreme one.
type Extreme struct {
	Set bool
	V   num.Dec
}

// pick adds v to an extreme: it replaces the held value when sign is the
// sign of v.Cmp(held) (-1 for Min, +1 for Max).
func pick(acc Extreme, v num.Dec, sign int) Extreme {
	if !acc.Set || v.Cmp(acc.V) == sign {
		return Extreme{true, v}
	}
	return acc
}

func mergeExtreme(a, b Extreme, sign int) Extreme {
	if !b.Set {
		return a
	}
	return pick(a, b.V, sign)
}

// Min is the smallest value; an empty window has none (the zero Dec).
type Min struct{}

func (Min) Init() Extreme                               { return Extreme{} }
func (Min) Add(acc Extreme, _ int64, v num.Dec) Extreme { return pick(acc, v, -1) }
func (Min) Merge(a, b Extreme) Extreme                  { return mergeExtreme(a, b, -1) }
func (Min) Result(acc Extreme) num.Dec                  { return acc.V }

// Max is the largest value.
type Max struct{}

func (Max) Init() Extreme                               { return Extreme{} }
func (Max) Add(acc Extreme, _ int64, v num.Dec) Extreme { return pick(acc, v, 1) }
func (Max) Merge(a, b Extreme) Extreme                  { return mergeExtreme(a, b, 1) }
func (Max) Result(acc Extreme) num.Dec                  { return acc.V }

// Moments is the accumulator of Avg and CountSum: how many values and
// their exact sum.
type Moments struct {
	N   int64
	Sum num.Dec
}

func addMoments(acc Moments, v num.Dec) Moments { return Moments{acc.N + 1, acc.Sum.Add(v)} }
func mergeMoments(a, b Moments) Moments         { return Moments{a.N + b.N, a.Sum.Add(b.Sum)} }
func retractMoments(a, b Moments) Moments       { return Moments{a.N - b.N, a.Sum.Sub(b.Sum)} }

// Avg is the mean, rounded half away from zero to num.DivisionPlaces
// decimals; an empty window's is 0.
type Avg struct{}

func (Avg) Init() Moments                               { return Moments{} }
func (Avg) Add(acc Moments, _ int64, v num.Dec) Moments { return addMoments(acc, v) }
func (Avg) Merge(a, b Moments) Moments                  { return mergeMoments(a, b) }
func (Avg) Retract(a, b Moments) Moments                { return retractMoments(a, b) }
func (Avg) Result(acc Moments) num.Dec {
	if acc.N == 0 {
		return num.Dec{}
	}
	return acc.Sum.DivInt(acc.N, num.DivisionPlaces)
}

// CountSum is the count and the sum together: one pass for rules such as
// "more than 10 transactions, or over $5,000".
type CountSum struct{}

func (CountSum) Init() Moments                               { return Moments{} }
func (CountSum) Add(acc Moments, _ int64, v num.Dec) Moments { return addMoments(acc, v) }
func (CountSum) Merge(a, b Moments) Moments                  { return mergeMoments(a, b) }
func (CountSum) Retract(a, b Moments) Moments                { return retractMoments(a, b) }
func (CountSum) Result(acc Moments) Moments                  { return acc }
