// Package store owns the contract between Strata and its event storage: the
// Store interface, expected versions, read and subscribe options, and the
// sentinel errors callers act on. Backends (eventlog, pgstore) implement it;
// store/storetest holds the conformance suite they must all pass.
package store
