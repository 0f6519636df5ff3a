package stream

import (
	"testing"

	"github.com/stratadb/strata/num"
)

func TestSessionStart(t *testing.T) {
	e, err := New(Config{Kind: Lookback, Size: 100_000}, CountSum{})
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{1_000, 5_000, 20_000, 24_000, 27_000, 90_000} {
		if _, err := e.Event("u", at, num.FromInt(1)); err != nil {
			t.Fatal(err)
		}
		e.Advance()
	}
	cases := []struct {
		t, gap, floor int64
		extra         []Elem[num.Dec]
		want          int64
	}{
		{27_000, 5_000, 0, nil, 20_000},                                             // 20, 24, 27: gaps of 4 and 3
		{30_000, 5_000, 0, nil, 20_000},                                             // the candidate 3 s after 27
		{40_000, 5_000, 0, nil, 40_000},                                             // 13 s after 27: a new session
		{27_000, 20_000, 0, nil, 1_000},                                             // every gap is short enough
		{27_000, 20_000, 10_000, nil, 20_000},                                       // but not before the floor
		{40_000, 5_000, 0, []Elem[num.Dec]{{Time: 31_000}, {Time: 36_000}}, 20_000}, // extra events bridge the gap
		{95_000, 5_000, 0, nil, 90_000},
		{500, 5_000, 0, nil, 500},
	}
	for _, c := range cases {
		got, err := e.SessionStart("u", c.t, c.gap, c.floor, c.extra...)
		if err != nil || got != c.want {
			t.Errorf("SessionStart(t=%d, gap=%d, floor=%d, %v) = %d, %v; want %d", c.t, c.gap, c.floor, c.extra, got, err, c.want)
		}
	}
	if got, _ := e.SessionStart("nobody", 10_000, 5_000, 0); got != 10_000 {
		t.Errorf("a key with no events: %d", got)
	}
	if _, err := e.SessionStart("u", 10, 5, 20); err == nil {
		t.Error("a floor after t was accepted")
	}
}
