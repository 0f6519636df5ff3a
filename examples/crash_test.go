package examples_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/orders"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/store"
)

const (
	shippedCrashEnv = "STRATA_SHIPPED_CRASH_DIR"
	dyingMarker     = "dying while applying OrderShipped"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(shippedCrashEnv); dir != "" {
		crashWhileShipping(dir)
		os.Exit(0) // not reached: the projection kills the process
	}
	os.Exit(m.Run())
}

// dyingSummary is order_summary that dies (SIGKILL, no cleanup) in the
// middle of applying a batch holding an OrderShipped event, after writing
// that batch's rows but before the runner commits them with the checkpoint.
// (The runner calls ApplyPrepared: Summary prepares its events.)
type dyingSummary struct{ orders.Summary }

func (d dyingSummary) ApplyPrepared(ctx context.Context, tx *sql.Tx, batch []event.Record, prepared []any) error {
	if err := d.Summary.ApplyPrepared(ctx, tx, batch, prepared); err != nil {
		return err
	}
	for _, r := range batch {
		if r.Type == "order.shipped" {
			os.Stdout.WriteString(dyingMarker + "\n")
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			// SIGKILL to ourselves lands at once; wait for it here,
			// bounded, so that a failed kill cannot hang the test.
			time.Sleep(time.Minute)
		}
	}
	return nil
}

func crashWhileShipping(dir string) {
	l, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{})
	if err != nil {
		os.Exit(3)
	}
	db, err := projection.OpenSQLite(filepath.Join(dir, "readmodels.db"))
	if err != nil {
		os.Exit(3)
	}
	cat, _ := examples.New(l, nil)
	r := projection.NewRunner(dyingSummary{orders.Summary{Registry: cat.Registry}}, db, l, projection.Options{Registry: cat.Registry, BatchSize: 1})
	r.Run(context.Background())
}

// The classic case: the process dies while handling OrderShipped; after a
// restart the summary says shipped, and nothing was applied twice.
func TestCrashWhileHandlingOrderShipped(t *testing.T) {
	dir := t.TempDir()
	l, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = l.Append(ctx, "order-o1", store.NoStream,
		event.Event{Type: "order.created", Schema: 3, Data: []byte(`{"customer":"c1","tax_amount":"1.00","shipping_cost":"2.00"}`)},
		event.Event{Type: "order.item_added", Data: []byte(`{"sku":"A","quantity":2,"price":"5.00"}`)},
		event.Event{Type: "order.shipped", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := l.Head(ctx)
	l.Close()

	// A child that fails to die is killed after a minute, and then lacks
	// the marker: the test fails instead of hanging.
	cctx, ccancel := context.WithTimeout(ctx, time.Minute)
	defer ccancel()
	cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), shippedCrashEnv+"="+dir)
	out, _ := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || !strings.Contains(string(out), dyingMarker) {
		t.Fatalf("the child did not die while shipping: %s", out)
	}

	l, err = eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	db, err := projection.OpenSQLite(filepath.Join(dir, "readmodels.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var status string
	var items int
	if err := db.QueryRow(`SELECT status, item_count FROM order_summary WHERE order_id = 'o1'`).Scan(&status, &items); err != nil || status != "created" || items != 2 {
		t.Fatalf("after the crash: %s, %d items, %v; want the shipment not yet applied", status, items, err)
	}
	cat, _ := examples.New(l, nil)
	runCtx, cancel := context.WithCancel(ctx)
	r := projection.NewRunner(orders.Summary{Registry: cat.Registry}, db, l, projection.Options{Registry: cat.Registry})
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, head); err != nil {
		t.Fatal(err)
	}
	var total string
	if err := db.QueryRow(`SELECT status, item_count, total FROM order_summary WHERE order_id = 'o1'`).Scan(&status, &items, &total); err != nil {
		t.Fatal(err)
	}
	if status != "shipped" || items != 2 || total != "13" {
		t.Fatalf("after restart: %s, %d items, total %s; want shipped, 2, 13", status, items, total)
	}
}
