// Package sqlitechoice measures the two SQLite drivers for read models
// (mattn/go-sqlite3, cgo; modernc.org/sqlite, pure Go) on the write pattern
// projections use: prepared upserts in batched transactions. It is its own
// module so that the driver not chosen stays out of Strata's go.mod.
//
//	cd bench/sqlitechoice && go test -bench . -benchtime 5x
package sqlitechoice
