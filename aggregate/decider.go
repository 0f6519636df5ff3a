package aggregate

// Decider is the decision logic of one aggregate type, free of storage:
// state is a fold of the events, and a command is decided against a state.
// S is the state, C the command and E the event type (usually an interface
// the aggregate's event structs implement).
type Decider[S, C, E any] struct {
	// Category names the aggregate type and prefixes its streams: "account"
	// makes the stream of account 42 "account-42".
	Category string
	// Version is the decider's declared version. Bump it when Evolve's
	// meaning changes: state saved by another version (snapshots) is then
	// ignored and rebuilt from the events.
	Version int
	// Initial returns the state before any event. nil means the zero S.
	Initial func() S
	// Evolve applies one event to a state and returns the new state. It must
	// be deterministic: the same events always fold to the same state.
	Evolve func(state S, e E) S
	// Decide returns the events a command causes in a state, or a domain
	// error (an overdraft, say) when the command is refused.
	Decide func(state S, cmd C) ([]E, error)
}

// Start returns the initial state.
func (d *Decider[S, C, E]) Start() S {
	if d.Initial == nil {
		var zero S
		return zero
	}
	return d.Initial()
}

// Fold applies events to state in order.
func (d *Decider[S, C, E]) Fold(state S, events ...E) S {
	for _, e := range events {
		state = d.Evolve(state, e)
	}
	return state
}

// Stream returns the stream name of the aggregate with the given id.
func (d *Decider[S, C, E]) Stream(id string) string { return d.Category + "-" + id }
