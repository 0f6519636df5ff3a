package stream

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// intSum sums int64 values: the scenarios' stand-in for money.
type intSum struct{}

func (intSum) Init() int64                           { return 0 }
func (intSum) Add(acc int64, _ int64, v int64) int64 { return acc + v }
func (intSum) Merge(a, b int64) int64                { return a + b }
func (intSum) Retract(a, b int64) int64              { return a - b }
func (intSum) Result(acc int64) int64                { return acc }

// intMax has no inverse: windows over it use the two-stacks queue.
type intMax struct{}

type maxAcc struct {
	Set bool
	Max int64
}

func (intMax) Init() maxAcc { return maxAcc{} }
func (intMax) Add(acc maxAcc, _ int64, v int64) maxAcc {
	if !acc.Set || v > acc.Max {
		return maxAcc{true, v}
	}
	return acc
}
func (m intMax) Merge(a, b maxAcc) maxAcc {
	if b.Set {
		return m.Add(a, 0, b.Max)
	}
	return a
}
func (intMax) Result(acc maxAcc) int64 { return acc.Max }

// scenario drives one engine whatever its aggregate's types.
type scenario interface {
	event(key string, t int64, v int64) (bool, error)
	watermark(w int64)
	drain(b *strings.Builder)
}

type scenarioEngine[A, R any] struct{ e *Engine[int64, A, R] }

func (s scenarioEngine[A, R]) event(key string, t, v int64) (bool, error) {
	return s.e.Event(key, t, v)
}
func (s scenarioEngine[A, R]) watermark(w int64) { s.e.Watermark(w) }
func (s scenarioEngine[A, R]) drain(b *strings.Builder) {
	for _, r := range s.e.Ready() {
		fmt.Fprintf(b, "%s %v %v", r.Key, r.Window, r.Value)
		if r.Firing > 0 {
			fmt.Fprintf(b, " firing=%d", r.Firing)
		}
		b.WriteByte('\n')
	}
	s.e.Advance()
}

func newScenario(cfg Config, agg string) (scenario, error) {
	switch agg {
	case "count":
		e, err := New[int64](cfg, Count[int64]{})
		return scenarioEngine[int64, int64]{e}, err
	case "sum":
		e, err := New[int64](cfg, intSum{})
		return scenarioEngine[int64, int64]{e}, err
	case "max":
		e, err := New[int64](cfg, intMax{})
		return scenarioEngine[maxAcc, int64]{e}, err
	case "list":
		e, err := New[int64](cfg, List[int64]{})
		return scenarioEngine[[]Elem[int64], []Elem[int64]]{e}, err
	case "distinct":
		e, err := New[int64](cfg, Distinct[int64]{})
		return scenarioEngine[distinctAcc[int64], int64]{e}, err
	}
	return nil, fmt.Errorf("unknown agg %q", agg)
}

// TestScenarios runs stream/testdata/scenarios/*.txt. Commands:
//
//	new type=tumbling|sliding|session|lookback [size= slide= gap= offset= lateness=] [mode=discarding] [agg=count|sum|max|list|distinct]
//	run
//	e KEY TS [VALUE]     an event (VALUE defaults to 1)
//	w W                  a watermark ("end" for end of input)
//
// run prints what fired, in order: results "KEY [start, end) VALUE
// [firing=N]", late events "late KEY TS VALUE". Rewrite with
// go test ./stream -run Scenarios -rewrite.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		var s scenario
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "new":
				var cfg Config
				agg := "count"
				for _, a := range d.CmdArgs {
					val := ""
					if len(a.Vals) > 0 {
						val = a.Vals[0]
					}
					var err error
					n := func() int64 {
						v, e := strconv.ParseInt(val, 10, 64)
						if e != nil {
							err = e
						}
						return v
					}
					switch a.Key {
					case "type":
						cfg.Kind, err = ParseKind(val)
					case "size":
						cfg.Size = n()
					case "slide":
						cfg.Slide = n()
					case "gap":
						cfg.Gap = n()
					case "offset":
						cfg.Offset = n()
					case "lateness":
						cfg.Lateness = n()
					case "mode":
						cfg.Mode, err = ParseMode(val)
					case "agg":
						agg = val
					default:
						d.Fatalf(t, "unknown argument %s", a.Key)
					}
					if err != nil {
						d.Fatalf(t, "%s: %v", a.Key, err)
					}
				}
				var err error
				s, err = newScenario(cfg, agg)
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				return ""
			case "run":
				var b strings.Builder
				for _, line := range strings.Split(d.Input, "\n") {
					f := strings.Fields(line)
					if len(f) == 0 || strings.HasPrefix(f[0], "#") {
						continue
					}
					switch {
					case f[0] == "e" && (len(f) == 3 || len(f) == 4):
						ts, err := strconv.ParseInt(f[2], 10, 64)
						if err != nil {
							d.Fatalf(t, "%s: %v", line, err)
						}
						v := int64(1)
						if len(f) == 4 {
							if v, err = strconv.ParseInt(f[3], 10, 64); err != nil {
								d.Fatalf(t, "%s: %v", line, err)
							}
						}
						late, err := s.event(f[1], ts, v)
						if err != nil {
							fmt.Fprintf(&b, "error: %v\n", err)
						}
						s.drain(&b)
						if late {
							fmt.Fprintf(&b, "late %s %d %d\n", f[1], ts, v)
						}
					case f[0] == "w" && len(f) == 2:
						w := EndOfInput
						if f[1] != "end" {
							var err error
							if w, err = strconv.ParseInt(f[1], 10, 64); err != nil {
								d.Fatalf(t, "%s: %v", line, err)
							}
						}
						s.watermark(w)
						s.drain(&b)
					default:
						d.Fatalf(t, "bad line %q", line)
					}
				}
				return b.String()
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}
