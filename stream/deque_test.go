package stream

import (
	"testing"

	"pgregory.net/rapid"
)

// TestDequePositions checks the deque against a plain slice through
// random pushes, pops and inserts: every queued value stays at its
// position, across the buffer's growing, wrapping and shrinking.
func TestDequePositions(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var d deque[int]
		var model []int // model[i] is at position head+i
		head, next := 0, 0
		for range rapid.IntRange(0, 400).Draw(t, "steps") {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op < 5 || len(model) == 0: // push (most often, so the deque grows)
				next++
				d.push(next)
				model = append(model, next)
			case op < 8: // pop
				if got := d.pop(); got != model[0] {
					t.Fatalf("pop = %d, want %d", got, model[0])
				}
				model = model[1:]
				head++
			default: // insert before a queued value, or at the end
				i := rapid.IntRange(0, len(model)).Draw(t, "at")
				next++
				d.insert(head+i, next)
				model = append(model[:i], append([]int{next}, model[i:]...)...)
			}
			if d.len() != len(model) || d.head != head {
				t.Fatalf("len %d head %d, want %d %d", d.len(), d.head, len(model), head)
			}
			if n := len(d.buf); n&(n-1) != 0 || n > shrinkFloor && n > 4*len(model) {
				t.Fatalf("buffer of %d for %d values", n, len(model))
			}
			for i, want := range model {
				if got := *d.at(head + i); got != want {
					t.Fatalf("position %d holds %d, want %d", head+i, got, want)
				}
			}
		}
	})
}

func TestNewest(t *testing.T) {
	e, err := New(Config{Kind: Lookback, Size: 10}, Count[int64]{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Newest("a"); ok {
		t.Fatal("newest of a key with no events")
	}
	for _, ts := range []int64{5, 9, 7} { // 7 comes out of order
		if _, err := e.Event("a", ts, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := e.Newest("a"); !ok || n != 9 {
		t.Fatalf("newest %d %v, want 9", n, ok)
	}
	e.Watermark(EndOfInput) // fires and forgets everything
	if _, ok := e.Newest("a"); ok {
		t.Fatal("newest after the end of input")
	}
	s, _ := New(Config{Kind: Tumbling, Size: 10}, Count[int64]{})
	if _, ok := s.Newest("a"); ok {
		t.Fatal("newest of a tumbling engine")
	}
}
