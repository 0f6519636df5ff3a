// Package projection owns Strata's read side: projections that turn the
// log into SQL read models. A Runner feeds one projection from its
// checkpoint in batches, and commits the rows the batch wrote together with
// the new checkpoint in one transaction, so after any crash each event has
// been applied exactly once. A projection that keeps failing stops in a
// visible failed state holding the position, the event and the error; only
// an operator's Resume or Skip (which is recorded) moves it on.
package projection
