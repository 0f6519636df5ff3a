package stream

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Event time is in milliseconds since the Unix epoch. Timestamps must lie in
// [MinTime, MaxTime] and durations in (0, MaxDuration], so that window
// arithmetic never overflows; EndOfInput is the final watermark.
const (
	MinTime     int64 = -(1 << 61)
	MaxTime     int64 = 1 << 61
	MaxDuration int64 = 1 << 58
	EndOfInput  int64 = math.MaxInt64

	noWatermark  = MinTime - 1             // before the first watermark
	maxWatermark = MaxTime + 4*MaxDuration // EndOfInput, clamped: past every window's cleanup
)

// Window is the half-open interval [Start, End) of event time.
type Window struct {
	Start, End int64
}

// MaxTimestamp is the last instant inside the window: it fires once the
// watermark reaches it.
func (w Window) MaxTimestamp() int64 { return w.End - 1 }

func (w Window) String() string { return fmt.Sprintf("[%d, %d)", w.Start, w.End) }

// Kind is a kind of window.
type Kind uint8

const (
	Tumbling Kind = iota + 1
	Sliding
	Session
	Lookback
)

func (k Kind) String() string {
	switch k {
	case Tumbling:
		return "tumbling"
	case Sliding:
		return "sliding"
	case Session:
		return "session"
	case Lookback:
		return "lookback"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind reads a kind's name as String writes it.
func ParseKind(s string) (Kind, error) {
	for k := Tumbling; k <= Lookback; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("stream: unknown window type %q (tumbling, sliding, session or lookback)", s)
}

// Mode says what a window that fires again (a late event reached it) reports.
type Mode uint8

const (
	// Accumulating reports everything the window holds: its result so far.
	Accumulating Mode = iota
	// Discarding reports only what arrived since the window last fired.
	Discarding
)

func (m Mode) String() string {
	if m == Discarding {
		return "discarding"
	}
	return "accumulating"
}

// ParseMode reads a mode's name as String writes it.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "accumulating", "":
		return Accumulating, nil
	case "discarding":
		return Discarding, nil
	}
	return 0, fmt.Errorf("stream: unknown mode %q (accumulating or discarding)", s)
}

// Config says how an Engine windows its events. Durations are in
// milliseconds (use Millis to convert a time.Duration).
type Config struct {
	Kind Kind
	// Size is the length of tumbling and sliding windows, and the span a
	// lookback window looks back over (the event's own instant included:
	// a lookback of 60 s at t covers [t−59999, t]).
	Size int64
	// Spans are more lookback spans over the same events: each event then
	// fires one window per span, Size's first, then these in order. One
	// engine keeps the events once and looks each key up once for all of
	// them, which is what rules over several spans ("10 in 60 s or $5,000
	// in 5 min") want. Lookback only.
	Spans []int64
	// Slide is how far apart sliding windows start, at most Size. Events
	// are stored in panes gcd(Size, Slide) long, each in exactly one.
	Slide int64
	// Gap closes a session window: events further apart than Gap are in
	// different sessions.
	Gap int64
	// Offset shifts tumbling and sliding windows' alignment (as Flink's
	// offset does: windows start at Offset + k×Slide). Default 0.
	Offset int64
	// Lateness is how long after a window fires it still accepts late
	// events (each one fires it again). Default 0: late events are reported
	// as late.
	Lateness int64
	// Mode is what a window reports when it fires again. Default
	// Accumulating.
	Mode Mode
}

// Equal reports whether c and o configure the same windows.
func (c Config) Equal(o Config) bool {
	return c.Kind == o.Kind && c.Size == o.Size && c.Slide == o.Slide && c.Gap == o.Gap &&
		c.Offset == o.Offset && c.Lateness == o.Lateness && c.Mode == o.Mode && slices.Equal(c.Spans, o.Spans)
}

// spans is every lookback span, Size's first.
func (c Config) spans() []int64 { return append([]int64{c.Size}, c.Spans...) }

// Millis converts d to the engine's milliseconds, rounding down.
func Millis(d time.Duration) int64 { return d.Milliseconds() }

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("stream: invalid configuration")

// Validate reports every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	dur := func(name string, v int64, need bool) {
		switch {
		case v == 0 && need:
			bad("%s is required for %s windows", name, c.Kind)
		case v < 0 || v > MaxDuration:
			bad("%s %d ms outside 1..%d", name, v, MaxDuration)
		}
	}
	switch c.Kind {
	case Tumbling:
		dur("size", c.Size, true)
	case Sliding:
		dur("size", c.Size, true)
		dur("slide", c.Slide, true)
		if c.Slide > c.Size {
			bad("slide %d ms is longer than size %d ms (events between windows would belong to none)", c.Slide, c.Size)
		}
	case Session:
		dur("gap", c.Gap, true)
	case Lookback:
		dur("size", c.Size, true)
		for _, sp := range c.Spans {
			dur("span", sp, true)
		}
	default:
		bad("window type is required (tumbling, sliding, session or lookback)")
	}
	if c.Kind != Lookback && len(c.Spans) > 0 {
		bad("spans apply only to lookback windows")
	}
	if c.Kind != Sliding && c.Slide != 0 {
		bad("slide applies only to sliding windows")
	}
	if c.Kind != Session && c.Gap != 0 {
		bad("gap applies only to session windows")
	}
	if (c.Kind == Session || c.Kind == Lookback) && c.Offset != 0 {
		bad("offset applies only to tumbling and sliding windows")
	}
	if c.Offset < 0 || c.Offset > MaxDuration {
		bad("offset %d ms outside 0..%d", c.Offset, MaxDuration)
	}
	if c.Lateness < 0 || c.Lateness > MaxDuration {
		bad("lateness %d ms outside 0..%d", c.Lateness, MaxDuration)
	}
	if c.Mode > Discarding {
		bad("unknown mode %d", c.Mode)
	}
	return errors.Join(errs...)
}

// floorMod is x mod m in [0, m), for m > 0.
func floorMod(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}

// alignDown returns the largest t' ≤ t with t' ≡ offset (mod step): the start
// of the aligned interval holding t (Flink's getWindowStartWithOffset).
func alignDown(t, offset, step int64) int64 {
	return t - floorMod(t-offset, step)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
