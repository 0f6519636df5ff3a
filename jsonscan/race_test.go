//go:build race

package jsonscan

// raceEnabled: the race detector instruments code in ways that allocate.
const raceEnabled = true
