package stream

import "testing"

func TestWatermarks(t *testing.T) {
	w := NewWatermarks(2, 10)
	step := func(what string, got int64, advanced bool, want int64, wantAdvanced bool) {
		t.Helper()
		if got != want || advanced != wantAdvanced {
			t.Fatalf("%s: watermark %d (advanced %v), want %d (%v)", what, got, advanced, want, wantAdvanced)
		}
	}
	wm, adv := w.Observe(0, 100)
	step("input 1 has shown nothing: it holds the watermark", wm, adv, noWatermark, false)
	wm, adv = w.Observe(1, 50)
	step("the least of 100-11 and 50-11", wm, adv, 39, true)
	wm, adv = w.Observe(0, 200)
	step("input 1 is behind", wm, adv, 39, false)
	wm, adv = w.SetIdle(1, true)
	step("input 1 idle: input 0 alone", wm, adv, 189, true)
	wm, adv = w.Observe(1, 60)
	step("input 1 active again, behind: the watermark never goes back", wm, adv, 189, false)
	wm, adv = w.Observe(1, 300)
	step("input 0 is now the least", wm, adv, 189, false)
	wm, adv = w.Observe(0, 400)
	step("both past", wm, adv, 289, true)
	w.SetIdle(0, true)
	wm, adv = w.SetIdle(1, true)
	step("every input idle: the watermark holds", wm, adv, 289, false)
}
