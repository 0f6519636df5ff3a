package aggregatetest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stratadb/strata/aggregate"
)

type ev interface{}

var errNo = errors.New("no")

// echo causes the command back as its event, or refuses "refuse".
var echo = aggregate.Decider[int, string, ev]{
	Category: "echo",
	Evolve:   func(s int, e ev) int { return s + 1 },
	Decide: func(s int, cmd string) ([]ev, error) {
		if cmd == "refuse" {
			return nil, errNo
		}
		return []ev{fmt.Sprintf("%s@%d", cmd, s)}, nil
	},
}

// recorder is a testing.TB whose Fatal ends the goroutine and remembers why.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// outcome runs check with a recorder and returns its failure message.
func outcome(check func(t testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.msg
}

func TestScenarioAssertions(t *testing.T) {
	cases := []struct {
		name     string
		check    func(t testing.TB)
		wantFail string // "" means the check passes
	}{
		{"then passes", func(t testing.TB) { For(echo).Given("a", "b").When("c").Then(t, "c@2") }, ""},
		{"then wrong event", func(t testing.TB) { For(echo).When("c").Then(t, "c@1") }, `event 0 is "c@0", want "c@1"`},
		{"then wrong count", func(t testing.TB) { For(echo).When("c").Then(t) }, "caused 1 events, want 0"},
		{"then refused", func(t testing.TB) { For(echo).When("refuse").Then(t, "x") }, "was refused"},
		{"error passes", func(t testing.TB) { For(echo).When("refuse").ThenError(t, errNo) }, ""},
		{"error accepted", func(t testing.TB) { For(echo).When("c").ThenError(t, errNo) }, "was accepted"},
		{"error wrong", func(t testing.TB) { For(echo).When("refuse").ThenError(t, errors.New("other")) }, "failed with no, want other"},
		{"state passes", func(t testing.TB) { For(echo).Given("a").When("b").ThenState(t, 2) }, ""},
		{"state wrong", func(t testing.TB) { For(echo).When("b").ThenState(t, 5) }, "state after"},
		{"no when", func(t testing.TB) { For(echo).Then(t) }, "has no When"},
		{"custom equality", func(t testing.TB) {
			For(echo).Equal(func(a, b ev) bool { return strings.HasPrefix(a.(string), b.(string)) }).When("c").Then(t, "c")
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := outcome(tc.check)
			if tc.wantFail == "" && msg != "" {
				t.Fatalf("check failed: %s", msg)
			}
			if tc.wantFail != "" && !strings.Contains(msg, tc.wantFail) {
				t.Fatalf("check failure %q, want one containing %q", msg, tc.wantFail)
			}
		})
	}
}
