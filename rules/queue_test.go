package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// gatedLog holds every queued append's acknowledgement until gate is
// closed, tells entered each time one is waited for, and can fail them.
type gatedLog struct {
	*eventlog.Log
	gate    chan struct{}
	entered chan struct{}
	fail    error
}

func newGatedLog(t *testing.T) *gatedLog {
	g := &gatedLog{Log: openLog(t, t.TempDir()), gate: make(chan struct{}), entered: make(chan struct{}, 64)}
	close(g.gate)
	return g
}

func (g *gatedLog) Enqueue(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (func() (store.AppendResult, error), error) {
	wait, err := g.Log.Enqueue(ctx, stream, expected, events...)
	if err != nil {
		return nil, err
	}
	gate, entered, fail := g.gate, g.entered, g.fail
	return func() (store.AppendResult, error) {
		entered <- struct{}{}
		<-gate
		res, err := wait()
		if err == nil && fail != nil {
			return store.AppendResult{}, fail
		}
		return res, err
	}, nil
}

// A retry of a transaction whose append is still queued gets the same
// decision, and the transaction is counted and recorded once.
func TestRetryWhileQueued(t *testing.T) {
	ctx := context.Background()
	g := newGatedLog(t)
	a := openAuth(t, g)
	for u := range 20 {
		user := "u" + string(rune('a'+u))
		g.gate, g.entered = make(chan struct{}), make(chan struct{}, 64)
		txn := Transaction{ID: event.NewID(), User: user, Amount: dec("10"), At: t0}
		var ds [2]Decision
		var errs [2]error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ds[0], errs[0] = a.Authorize(ctx, txn) }()
		<-g.entered // the first is queued, its shards let go
		go func() { defer wg.Done(); ds[1], errs[1] = a.Authorize(ctx, txn) }()
		close(g.gate)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
		if ds[0].Repeated || !ds[1].Repeated || ds[0].Position != ds[1].Position || ds[1].Outcome != Approve {
			t.Fatalf("%s: first %+v, retry %+v", user, ds[0], ds[1])
		}
		// Counted once: nine more in the minute are approved, the tenth
		// more is the 11th and denied.
		for i := range 10 {
			d := authorize(t, a, user, "10", t0.Add(time.Duration(i+1)*time.Second))
			if want := map[bool]Action{true: Deny, false: Approve}[i == 9]; d.Outcome != want {
				t.Fatalf("%s: transaction %d after the retry: %s %s, want %s", user, i+2, d.Outcome, fired(d), want)
			}
		}
		n := 0
		for rec, err := range g.ReadStream(ctx, StreamOf(user), store.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			if rec.Type == TypeTransaction && rec.ID == txn.ID {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s: the transaction is recorded %d times", user, n)
		}
	}
}

// A late transaction reads the user's earlier decisions back from the log
// to amend them: one still queued is waited for, not missed.
func TestLateTransactionWaitsForQueuedDecision(t *testing.T) {
	g := newGatedLog(t)
	a := openAuth(t, g)
	for i := range 9 {
		authorize(t, a, "u1", "10", t0.Add(time.Duration(10+i)*time.Second))
	}
	last, late := lateBehindQueued(t, a, g,
		Transaction{User: "u1", Amount: dec("10"), At: t0.Add(19 * time.Second)},
		Transaction{User: "u1", Amount: dec("10"), At: t0.Add(5 * time.Second)})
	if last.Outcome != Approve || len(late.Amendments) != 1 || late.Amendments[0].Transaction != last.Transaction || late.Amendments[0].Outcome != Deny {
		t.Fatalf("at 19 s: %s; the late one's amendments %+v, want the one at 19 s to deny", last.Outcome, late.Amendments)
	}
}

// The same through a merchant's windows: the queued decision is another
// user's (in another shard), at the late one's merchant.
func TestLateTransactionWaitsForQueuedDecisionAtItsMerchant(t *testing.T) {
	ctx := context.Background()
	g := newGatedLog(t)
	a := openAuth(t, g)
	if err := a.Apply(ctx, "test", Rule{Name: "merchant_burst", Key: "merchant", Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "count > 3", Action: Deny}); err != nil {
		t.Fatal(err)
	}
	other := "v"
	for shardOf(other, 8) == shardOf("u4", 8) {
		other += "v"
	}
	for i, u := range []string{"u1", "u2"} {
		if _, err := a.Authorize(ctx, Transaction{User: u, Merchant: "m1", Amount: dec("10"), At: t0.Add(time.Duration(10+i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	last, late := lateBehindQueued(t, a, g,
		Transaction{User: "u4", Merchant: "m1", Amount: dec("10"), At: t0.Add(12 * time.Second)},
		Transaction{User: other, Merchant: "m1", Amount: dec("10"), At: t0.Add(5 * time.Second)})
	if last.Outcome != Approve || len(late.Amendments) != 1 || late.Amendments[0].Transaction != last.Transaction || late.Amendments[0].Outcome != Deny {
		t.Fatalf("u4 at 12 s: %s; the late one's amendments %+v, want u4's to deny", last.Outcome, late.Amendments)
	}
}

// lateBehindQueued decides queued, holds its append in g's gate, decides
// late meanwhile (which must wait for it), then lets both through.
func lateBehindQueued(t *testing.T, a *Authorizer, g *gatedLog, queued, late Transaction) (Decision, Decision) {
	t.Helper()
	ctx := context.Background()
	g.gate, g.entered = make(chan struct{}), make(chan struct{}, 64)
	var d [2]Decision
	var errs [2]error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		d[0], errs[0] = a.Authorize(ctx, queued)
	}()
	<-g.entered // the first decision's append is queued
	go func() {
		defer wg.Done()
		d[1], errs[1] = a.Authorize(ctx, late)
	}()
	<-g.entered // the late one waits for it
	close(g.gate)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	return d[0], d[1]
}

// An append that fails once queued leaves windows that count a transaction
// the log may not have: the Authorizer refuses to decide or checkpoint on
// them, and a new one, opened on the log, decides again.
func TestQueuedAppendFailureStopsTheAuthorizer(t *testing.T) {
	ctx := context.Background()
	g := newGatedLog(t)
	dir := t.TempDir()
	a, err := Open(ctx, g, Options{Shards: 8, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	authorize(t, a, "u1", "10", t0)
	disk := errors.New("disk on fire")
	g.fail = disk
	if _, err := a.Authorize(ctx, Transaction{User: "u1", Amount: dec("10"), At: t0.Add(time.Second)}); !errors.Is(err, disk) {
		t.Fatalf("the failed append: %v", err)
	}
	g.fail = nil
	if _, err := a.Authorize(ctx, Transaction{User: "u2", Amount: dec("10"), At: t0.Add(2 * time.Second)}); !errors.Is(err, ErrStateLost) {
		t.Fatalf("after it: %v, want ErrStateLost", err)
	}
	if err := a.Checkpoint(); !errors.Is(err, ErrStateLost) {
		t.Fatalf("checkpoint after it: %v, want ErrStateLost", err)
	}
	// (The fake failure came after the append was written: the log has
	// both transactions, and the reopened windows count both.)
	b, err := Open(ctx, g, Options{Shards: 8, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		d := authorize(t, b, "u1", "10", t0.Add(time.Duration(3+i)*time.Second))
		if want := map[bool]Action{true: Deny, false: Approve}[i == 8]; d.Outcome != want {
			t.Fatalf("reopened, transaction %d: %s %s, want %s", i+3, d.Outcome, fired(d), want)
		}
	}
}

// Transactions stamped with the instant of the user's latest decision came
// after it, not late: they are decided without reading the user's stream
// back, and amend nothing.
func TestSameInstantIsNotLate(t *testing.T) {
	a := openAuth(t, openLog(t, t.TempDir()))
	for i := range 12 {
		d := authorize(t, a, "u1", "10", t0)
		want := map[bool]Action{true: Deny, false: Approve}[i >= 10]
		if d.Outcome != want || len(d.Amendments) != 0 {
			t.Fatalf("transaction %d: %s, amendments %v; want %s and none", i+1, d.Outcome, d.Amendments, want)
		}
		var h held
		txn := Transaction{User: "u1", At: t0}
		a.lock(&txn, &h)
		late := a.late(&txn, &h)
		a.unlock(&h)
		if late != 0 {
			t.Fatalf("after transaction %d, one at the same instant counts as late", i+1)
		}
	}
}

func TestWindowStats(t *testing.T) {
	a := openAuth(t, openLog(t, t.TempDir()))
	authorize(t, a, "u1", "10", t0)
	authorize(t, a, "u1", "10", t0.Add(time.Second))
	authorize(t, a, "u2", "6000", t0) // denied: not counted
	authorize(t, a, "u3", "10", t0)
	// The reference rules: one engine per user (both spans in it).
	if st := a.WindowStats(); st.Keys != 2 || st.Events != 3 {
		t.Fatalf("%+v, want 2 keys (u1, u3) and 3 events", st)
	}
}

// The read-back for amendments goes as far as the marks require: after one
// transaction came 9 s late, a decision recorded before it but later in
// time is still found (a mark's time is the latest up to its position, not
// the time at it).
func TestPastDecisionsReachPastALateOne(t *testing.T) {
	withMarksEvery(t, 1)
	ctx := context.Background()
	a := openAuth(t, openLog(t, t.TempDir()))
	for _, sec := range []int{10, 20, 11, 21} {
		authorize(t, a, "u1", "10", t0.Add(time.Duration(sec)*time.Second))
	}
	txn := Transaction{User: "u1", At: t0.Add(15 * time.Second)}
	if m := a.marks.atOrBefore(millis(txn.At)); m.T != millis(t0.Add(10*time.Second)) {
		t.Fatalf("mark at or before 15 s: %+v, want the one after the transaction at 10 s", m)
	}
	var h held
	a.lock(&txn, &h)
	defer a.unlock(&h)
	pasts, err := a.pastDecisions(ctx, &txn, millis(txn.At), a.set.maxSpan().Milliseconds(), &h)
	if err != nil {
		t.Fatal(err)
	}
	var secs []int64
	for _, p := range pasts {
		secs = append(secs, (millis(p.txn.At)-millis(t0))/1000)
	}
	if fmt.Sprint(secs) != "[20 21]" {
		t.Fatalf("past decisions after 15 s: %v, want [20 21]", secs)
	}
}

// recordOf's encoder writes what encoding/json writes (replay and readers
// decode with either).
func TestRecordEncodesAsEncodingJSON(t *testing.T) {
	txn := Transaction{ID: event.NewID(), User: "u<1>&", Amount: dec("125.40"), At: t0, Merchant: "m\"42", Attrs: map[string]string{"b": "2", "a": "1"}}
	d := Decision{Transaction: txn.ID, User: txn.User, At: t0, Outcome: Deny,
		Fired:      []Fired{{Rule: "spend", Version: 1, Action: Deny, Severity: "high", Values: []Value{{Name: "sum(amount)", Value: dec("5001.5")}}}},
		Amendments: []Amendment{{Transaction: event.NewID(), User: "u1", At: t0, Outcome: Deny, Previous: Approve, Cause: txn.ID}}}
	evs, err := recordOf(&txn, &d)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []any{&txn, &d, &d.Amendments[0]} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(evs[i].Data) != string(want) {
			t.Errorf("event %d: %s\nencoding/json: %s", i, evs[i].Data, want)
		}
		// Replays and read-backs decode with goccy/go-json too: the same
		// values as encoding/json.
		byStd, byGoccy := reflect.New(reflect.TypeOf(v).Elem()), reflect.New(reflect.TypeOf(v).Elem())
		if err := json.Unmarshal(evs[i].Data, byStd.Interface()); err != nil {
			t.Fatal(err)
		}
		if err := gojson.Unmarshal(evs[i].Data, byGoccy.Interface()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(byStd.Interface(), byGoccy.Interface()) {
			t.Errorf("event %d decodes to %+v with goccy/go-json, %+v with encoding/json", i, byGoccy.Interface(), byStd.Interface())
		}
	}
}
