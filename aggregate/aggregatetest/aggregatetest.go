// Package aggregatetest tests deciders without storage, in the
// given/when/then style:
//
//	aggregatetest.For(account).
//		Given(Opened{}, Deposited{Amount: d("500")}).
//		When(Withdraw{Amount: d("200")}).
//		Then(t, Withdrew{Amount: d("200")})
package aggregatetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/stratadb/strata/aggregate"
)

// Scenario is a history and a command, waiting for its expectation.
type Scenario[S, C, E any] struct {
	decider aggregate.Decider[S, C, E]
	history []E
	cmd     C
	hasCmd  bool
	equal   func(a, b E) bool
}

// For starts a scenario for decider d, with no history.
func For[S, C, E any](d aggregate.Decider[S, C, E]) *Scenario[S, C, E] {
	return &Scenario[S, C, E]{decider: d, equal: func(a, b E) bool { return reflect.DeepEqual(a, b) }}
}

// Given adds events that happened before the command. (A method rather
// than a function so that concrete event values convert to E.)
func (s *Scenario[S, C, E]) Given(history ...E) *Scenario[S, C, E] {
	s.history = append(s.history, history...)
	return s
}

// Equal replaces reflect.DeepEqual for comparing events (decimal types, for
// one, can be equal without being identical).
func (s *Scenario[S, C, E]) Equal(eq func(a, b E) bool) *Scenario[S, C, E] {
	s.equal = eq
	return s
}

// When sets the command.
func (s *Scenario[S, C, E]) When(cmd C) *Scenario[S, C, E] {
	s.cmd, s.hasCmd = cmd, true
	return s
}

func (s *Scenario[S, C, E]) run(t testing.TB) ([]E, error) {
	t.Helper()
	if !s.hasCmd {
		t.Fatal("aggregatetest: scenario has no When")
	}
	state := s.decider.Fold(s.decider.Start(), s.history...)
	return s.decider.Decide(state, s.cmd)
}

// Then asserts the command is accepted and causes exactly want.
func (s *Scenario[S, C, E]) Then(t testing.TB, want ...E) {
	t.Helper()
	got, err := s.run(t)
	if err != nil {
		t.Fatalf("command %#v was refused: %v", s.cmd, err)
	}
	if len(got) != len(want) {
		t.Fatalf("command %#v caused %d events, want %d:\n got  %s\n want %s", s.cmd, len(got), len(want), list(got), list(want))
	}
	for i := range got {
		if !s.equal(got[i], want[i]) {
			t.Fatalf("command %#v: event %d is %#v, want %#v", s.cmd, i, got[i], want[i])
		}
	}
}

// ThenError asserts the command is refused with an error matching target
// (errors.Is), and causes no event.
func (s *Scenario[S, C, E]) ThenError(t testing.TB, target error) {
	t.Helper()
	got, err := s.run(t)
	if err == nil {
		t.Fatalf("command %#v was accepted (events %s), want error %v", s.cmd, list(got), target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("command %#v failed with %v, want %v", s.cmd, err, target)
	}
	if len(got) != 0 {
		t.Fatalf("command %#v failed but returned events %s", s.cmd, list(got))
	}
}

// ThenState asserts the state after the history and the command's events.
func (s *Scenario[S, C, E]) ThenState(t testing.TB, want S) {
	t.Helper()
	got, err := s.run(t)
	if err != nil {
		t.Fatalf("command %#v was refused: %v", s.cmd, err)
	}
	state := s.decider.Fold(s.decider.Fold(s.decider.Start(), s.history...), got...)
	if !reflect.DeepEqual(state, want) {
		t.Fatalf("state after %#v is %#v, want %#v", s.cmd, state, want)
	}
}

func list[E any](events []E) string {
	s := "["
	for i, e := range events {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%#v", e)
	}
	return s + "]"
}
