// Package peers measures Strata against what teams use today, on the same
// machine in the same run, so that the ratios mean something: a naive
// PostgreSQL event table (one INSERT per append, a unique (stream, version)
// constraint for optimistic concurrency) against the embedded log.
//
// The PostgreSQL side needs STRATA_TEST_POSTGRES_URL and is skipped without it.
package peers
