package sqlitechoice

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3"
	_ "modernc.org/sqlite"
)

// BenchmarkUpserts upserts 200,000 order_summary rows (each row updated
// twice, as an order gets created then amended) in transactions of 1,000.
func BenchmarkUpserts(b *testing.B) {
	for _, drv := range []struct{ name, driver, dsn string }{
		{"mattn", "sqlite3", "?_journal_mode=WAL&_synchronous=NORMAL"},
		{"modernc", "sqlite", "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"},
	} {
		b.Run(drv.name, func(b *testing.B) {
			const rows = 100_000
			for range b.N {
				db, err := sql.Open(drv.driver, filepath.Join(b.TempDir(), "rm.db")+drv.dsn)
				if err != nil {
					b.Fatal(err)
				}
				db.SetMaxOpenConns(1)
				if _, err := db.Exec(`CREATE TABLE order_summary (order_id TEXT PRIMARY KEY, customer TEXT, item_count INTEGER, total TEXT, status TEXT, position INTEGER)`); err != nil {
					b.Fatal(err)
				}
				var tx *sql.Tx
				var stmt *sql.Stmt
				for i := range 2 * rows {
					if i%1000 == 0 {
						if tx != nil {
							stmt.Close()
							if err := tx.Commit(); err != nil {
								b.Fatal(err)
							}
						}
						tx, _ = db.Begin()
						stmt, err = tx.Prepare(`INSERT INTO order_summary (order_id, customer, item_count, total, status, position) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(order_id) DO UPDATE SET item_count = excluded.item_count, total = excluded.total, status = excluded.status, position = excluded.position`)
						if err != nil {
							b.Fatal(err)
						}
					}
					id := fmt.Sprintf("o-%d", i%rows)
					if _, err := stmt.Exec(id, "c-1", i%7, "12.50", "open", i); err != nil {
						b.Fatal(err)
					}
				}
				stmt.Close()
				tx.Commit()
				db.Close()
			}
			b.ReportMetric(float64(2*rows*b.N)/b.Elapsed().Seconds(), "upserts/s")
		})
	}
}
