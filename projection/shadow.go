package projection

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// shadowSample is how many differing rows a diff shows per table and side.
const shadowSample = 5

// compareVersions compares the projection's tables in two versions (both
// at rest at one position) and describes how they differ, "" if they do
// not. The runtime's own tables (strata_*) are left out, and so are the
// internal tables of virtual tables (full-text indexes), whose layout
// depends on how the rows were written: the virtual table's rows are
// compared instead.
func compareVersions(ctx context.Context, cat *Catalog, old, new Version) (string, error) {
	db, err := sql.Open(driverName, "file::memory:?_query_only=true")
	if err != nil {
		return "", err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	for schema, v := range map[string]Version{"old": old, "new": new} {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ATTACH DATABASE ? AS %s`, schema), "file:"+cat.Path(v)+"?mode=ro"); err != nil {
			return "", fmt.Errorf("shadow check: attach version %d: %w", v.Number, err)
		}
	}
	oldTables, err := userTables(ctx, conn, "old")
	if err != nil {
		return "", err
	}
	newTables, err := userTables(ctx, conn, "new")
	if err != nil {
		return "", err
	}
	var diff strings.Builder
	for _, t := range oldTables {
		if !slices.Contains(newTables, t) {
			fmt.Fprintf(&diff, "table %s: only in the serving version %d\n", t, old.Number)
		}
	}
	for _, t := range newTables {
		if !slices.Contains(oldTables, t) {
			fmt.Fprintf(&diff, "table %s: only in the new version %d\n", t, new.Number)
			continue
		}
		if err := compareTable(ctx, conn, t, old, new, &diff); err != nil {
			return "", err
		}
	}
	return diff.String(), nil
}

// userTables lists a schema's tables, without the runtime's and the
// internal tables of virtual tables.
func userTables(ctx context.Context, conn *sql.Conn, schema string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT name, sql FROM %s.sqlite_master WHERE type = 'table' AND name NOT LIKE 'strata\_%%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%%' ESCAPE '\' ORDER BY name`, schema))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names, virtual []string
	for rows.Next() {
		var name string
		var ddl sql.NullString
		if err := rows.Scan(&name, &ddl); err != nil {
			return nil, err
		}
		names = append(names, name)
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(ddl.String)), "CREATE VIRTUAL TABLE") {
			virtual = append(virtual, name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool {
		for _, v := range virtual {
			if n != v && strings.HasPrefix(n, v+"_") {
				return true
			}
		}
		return false
	}), nil
}

func columns(ctx context.Context, conn *sql.Conn, schema, table string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT name FROM pragma_table_info(?, '%s') ORDER BY cid`, schema), table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func compareTable(ctx context.Context, conn *sql.Conn, table string, old, new Version, diff *strings.Builder) error {
	oc, err := columns(ctx, conn, "old", table)
	if err != nil {
		return err
	}
	nc, err := columns(ctx, conn, "new", table)
	if err != nil {
		return err
	}
	if !slices.Equal(oc, nc) {
		fmt.Fprintf(diff, "table %s: columns differ: serving (%s), new (%s)\n", table, strings.Join(oc, ", "), strings.Join(nc, ", "))
		return nil
	}
	quoted := `"` + strings.ReplaceAll(table, `"`, `""`) + `"`
	for _, side := range []struct{ a, b, label string }{
		{"old", "new", fmt.Sprintf("only in the serving version %d", old.Number)},
		{"new", "old", fmt.Sprintf("only in the new version %d", new.Number)},
	} {
		q := fmt.Sprintf(`SELECT * FROM %[1]s.%[3]s EXCEPT SELECT * FROM %[2]s.%[3]s`, side.a, side.b, quoted)
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM (`+q+`)`).Scan(&n); err != nil {
			return fmt.Errorf("shadow check: table %s: %w", table, err)
		}
		if n == 0 {
			continue
		}
		fmt.Fprintf(diff, "table %s: %d rows %s, e.g.\n", table, n, side.label)
		rows, err := conn.QueryContext(ctx, q+fmt.Sprintf(` LIMIT %d`, shadowSample))
		if err != nil {
			return err
		}
		vals := make([]any, len(oc))
		ptrs := make([]any, len(oc))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return err
			}
			cells := make([]string, len(vals))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				cells[i] = fmt.Sprintf("%s=%v", oc[i], v)
			}
			fmt.Fprintf(diff, "  (%s)\n", strings.Join(cells, ", "))
		}
		rows.Close()
	}
	return nil
}
