// Package aggregate owns Strata's write side: deciders (the pure decision
// logic of an aggregate type: initial state, evolve, decide) and the
// repository that runs a command against a stream: load the state from the
// events, decide, append with the expected version, and retry when another
// writer got there first.
package aggregate
