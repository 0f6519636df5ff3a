package stream

import (
	"fmt"
	"testing"

	"github.com/stratadb/strata/num"
)

// windowValues runs events (time, value) of one key through a sliding
// 4 ms / 2 ms window (panes of 2 ms; retracting aggregators keep a running
// total, the others a two-stacks queue) and returns each window's result.
func windowValues[A, R any](t *testing.T, agg Aggregator[num.Dec, A, R], events [][2]int64) []string {
	t.Helper()
	e, err := New(Config{Kind: Sliding, Size: 4, Slide: 2}, agg)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if _, err := e.Event("k", ev[0], num.FromInt(ev[1])); err != nil {
			t.Fatal(err)
		}
	}
	e.Watermark(EndOfInput)
	var out []string
	for _, r := range e.Ready() {
		out = append(out, fmt.Sprintf("%v=%v", r.Window, r.Value))
	}
	return out
}

// TestAggregators checks every built-in aggregator through sliding windows
// whose results overlap: [-2,2) [0,4) [2,6) [4,8) [6,10).
func TestAggregators(t *testing.T) {
	// Out of time order within the input, and two events at time 3.
	events := [][2]int64{{1, 5}, {3, 2}, {0, 7}, {3, 2}, {5, -4}, {7, 9}}
	for _, tc := range []struct {
		name string
		got  []string
		want string
	}{
		{"count", windowValues(t, Count[num.Dec]{}, events), "[[-2, 2)=2 [0, 4)=4 [2, 6)=3 [4, 8)=2 [6, 10)=1]"},
		{"sum", windowValues(t, Sum{}, events), "[[-2, 2)=12 [0, 4)=16 [2, 6)=0 [4, 8)=5 [6, 10)=9]"},
		{"min", windowValues(t, Min{}, events), "[[-2, 2)=5 [0, 4)=2 [2, 6)=-4 [4, 8)=-4 [6, 10)=9]"},
		{"max", windowValues(t, Max{}, events), "[[-2, 2)=7 [0, 4)=7 [2, 6)=2 [4, 8)=9 [6, 10)=9]"},
		{"avg", windowValues(t, Avg{}, events), "[[-2, 2)=6 [0, 4)=4 [2, 6)=0 [4, 8)=2.5 [6, 10)=9]"},
		{"distinct", windowValues(t, distinctDec{}, events), "[[-2, 2)=2 [0, 4)=3 [2, 6)=2 [4, 8)=2 [6, 10)=1]"},
		{"first", windowValues(t, First[num.Dec]{}, events), "[[-2, 2)=7 [0, 4)=7 [2, 6)=2 [4, 8)=-4 [6, 10)=9]"},
		{"last", windowValues(t, Last[num.Dec]{}, events), "[[-2, 2)=5 [0, 4)=2 [2, 6)=-4 [4, 8)=9 [6, 10)=9]"},
		{"list", windowValues(t, List[num.Dec]{}, events), "[[-2, 2)=[{0 7} {1 5}] [0, 4)=[{0 7} {1 5} {3 2} {3 2}] [2, 6)=[{3 2} {3 2} {5 -4}] [4, 8)=[{5 -4} {7 9}] [6, 10)=[{7 9}]]"},
	} {
		if got := fmt.Sprint(tc.got); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// distinctDec is Distinct over decimals' text (num.Dec is not comparable).
type distinctDec struct{}

func (distinctDec) Init() distinctAcc[string] { return nil }
func (distinctDec) Add(acc distinctAcc[string], t int64, v num.Dec) distinctAcc[string] {
	return Distinct[string]{}.Add(acc, t, v.String())
}
func (distinctDec) Merge(a, b distinctAcc[string]) distinctAcc[string] {
	return Distinct[string]{}.Merge(a, b)
}
func (distinctDec) Retract(a, b distinctAcc[string]) distinctAcc[string] {
	return Distinct[string]{}.Retract(a, b)
}
func (distinctDec) Result(acc distinctAcc[string]) int64 { return Distinct[string]{}.Result(acc) }
