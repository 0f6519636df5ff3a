package rules

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/store"
	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func openLog(t testing.TB, dir string) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(dir, eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func openAuth(t *testing.T, st store.Store) *Authorizer {
	t.Helper()
	a, err := Open(context.Background(), st, Options{Shards: 8})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func dec(s string) num.Dec {
	d, err := num.Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

func authorize(t *testing.T, a *Authorizer, user, amount string, at time.Time) Decision {
	t.Helper()
	d, err := a.Authorize(context.Background(), Transaction{User: user, Amount: dec(amount), At: at})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func fired(d Decision) string {
	var s []string
	for _, f := range d.Fired {
		var vs []string
		for _, v := range f.Values {
			vs = append(vs, v.Name+"="+v.Value.String())
		}
		s = append(s, f.Rule+"("+strings.Join(vs, ",")+")")
	}
	return strings.Join(s, " ")
}

// The reference burst: 11 transactions of one user between 55 s and 65 s.
// A tumbling minute would split them 5 + 6; the lookback window sees all
// 11, and the 11th is denied by velocity.
func TestVelocityBurstDeniedAtEleventh(t *testing.T) {
	a := openAuth(t, openLog(t, t.TempDir()))
	for i := range 11 {
		at := t0.Add(55*time.Second + time.Duration(i)*time.Second)
		d := authorize(t, a, "u1", "10", at)
		want := Approve
		if i == 10 {
			want = Deny
		}
		if d.Outcome != want {
			t.Fatalf("transaction %d at %v: %s (%s), want %s", i+1, at.Sub(t0), d.Outcome, fired(d), want)
		}
		if i == 10 && fired(d) != "velocity(count=11)" {
			t.Fatalf("11th: fired %s, want velocity(count=11)", fired(d))
		}
	}
	// The denied 11th does not count: a 12th, 1 ms later, is the 11th
	// counted, and is denied; 60 s after the first, the window has let
	// it go and the next one is approved.
	if d := authorize(t, a, "u1", "10", t0.Add(65*time.Second+time.Millisecond)); d.Outcome != Deny {
		t.Fatalf("12th: %s", d.Outcome)
	}
	if d := authorize(t, a, "u1", "10", t0.Add(115*time.Second)); d.Outcome != Approve {
		t.Fatalf("at 115 s: %s (%s)", d.Outcome, fired(d))
	}
	// Another user is not affected.
	if d := authorize(t, a, "u2", "10", t0.Add(65*time.Second)); d.Outcome != Approve {
		t.Fatalf("u2: %s", d.Outcome)
	}
}

func TestSpendOverFiveMinutes(t *testing.T) {
	cases := []struct {
		name    string
		amounts []string
		gap     time.Duration
		want    Action
		fired   string
	}{
		{"5001 in 5 min denied", []string{"2500", "2500", "1"}, time.Minute, Deny, "spend(sum(amount)=5001)"},
		{"4999.99 approved", []string{"2500", "2499.99"}, time.Minute, Approve, ""},
		{"4999 approved", []string{"4000", "999"}, 2 * time.Minute, Approve, ""},
		{"exactly 5000 approved", []string{"2500", "2500"}, time.Minute, Approve, ""},
		{"5001 over 5 min and 1 ms approved", []string{"2501", "2500"}, 5*time.Minute + time.Millisecond, Approve, ""},
		{"5001 within 5 min less 1 ms denied", []string{"2501", "2500"}, 5*time.Minute - time.Millisecond, Deny, "spend(sum(amount)=5001)"},
		{"one transaction over 5000 denied", []string{"5000.01"}, 0, Deny, "spend(sum(amount)=5000.01)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := openAuth(t, openLog(t, t.TempDir()))
			var d Decision
			for i, amt := range c.amounts {
				d = authorize(t, a, "u1", amt, t0.Add(time.Duration(i)*c.gap))
				if i < len(c.amounts)-1 && d.Outcome != Approve {
					t.Fatalf("transaction %d: %s (%s)", i+1, d.Outcome, fired(d))
				}
			}
			if d.Outcome != c.want || fired(d) != c.fired {
				t.Fatalf("last: %s %q, want %s %q", d.Outcome, fired(d), c.want, c.fired)
			}
		})
	}
}

// The decision is in the log, beside the transaction, and state survives
// reopening: decisions after a restart are those of an uninterrupted run.
func TestStateRebuiltFromLog(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l, err := eventlog.Open(dir, eventlog.Options{Durability: eventlog.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	a := openAuth(t, l)
	for i := range 6 {
		authorize(t, a, "u1", "700", t0.Add(time.Duration(i)*time.Second))
	}
	l.Close()
	a = openAuth(t, openLog(t, dir))
	// 6 × 700 = 4200 recorded; 4200 + 801 > 5000.
	d := authorize(t, a, "u1", "801", t0.Add(10*time.Second))
	if d.Outcome != Deny || fired(d) != "spend(sum(amount)=5001)" {
		t.Fatalf("after reopening: %s %s", d.Outcome, fired(d))
	}
	var types []string
	for rec, err := range a.st.ReadStream(ctx, "txn-u1", store.ReadStreamOptions{From: 13}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, rec.Type)
	}
	if fmt.Sprint(types) != "[transaction transaction.decided]" {
		t.Fatalf("the 7th append holds %v", types)
	}
}

func TestRetryGetsRecordedDecision(t *testing.T) {
	a := openAuth(t, openLog(t, t.TempDir()))
	txn := Transaction{ID: event.NewID(), User: "u1", Amount: dec("4000"), At: t0}
	first, err := a.Authorize(context.Background(), txn)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Authorize(context.Background(), txn)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Repeated || again.Outcome != Approve || again.Position != first.Position {
		t.Fatalf("retry: %+v, first %+v", again, first)
	}
	// Counted once: 4000 + 1000 is not over 5000.
	if d := authorize(t, a, "u1", "1000", t0.Add(time.Second)); d.Outcome != Approve {
		t.Fatalf("after the retry: %s %s", d.Outcome, fired(d))
	}
}

func TestBadTransactionWritesNothing(t *testing.T) {
	l := openLog(t, t.TempDir())
	a := openAuth(t, l)
	for _, txn := range []Transaction{
		{User: "", Amount: dec("1")},
		{User: "u1", Amount: dec("-1")},
		{User: "u\x00", Amount: dec("1")},
	} {
		if _, err := a.Authorize(context.Background(), txn); !errors.Is(err, ErrTransaction) {
			t.Fatalf("%+v: %v, want ErrTransaction", txn, err)
		}
	}
	if h, _ := l.Head(context.Background()); h != 0 {
		t.Fatalf("head %d after refused transactions", h)
	}
}

// A rule added at runtime decides its first transaction on windows filled
// from the recorded history (backfill), and the change is in the log.
func TestRuleAddedAtRuntimeBackfills(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir())
	a := openAuth(t, l)
	for i := range 3 {
		authorize(t, a, "u1", "100", t0.Add(time.Duration(i)*time.Minute))
	}
	rule := Rule{Name: "three-in-ten", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(10 * time.Minute)},
		Condition: "count >= 4", Action: Review, Severity: "medium"}
	if err := a.Apply(ctx, "alice", rule); err != nil {
		t.Fatal(err)
	}
	d := authorize(t, a, "u1", "100", t0.Add(3*time.Minute))
	if d.Outcome != Review || fired(d) != "three-in-ten(count=4)" || d.Fired[0].Version != 1 {
		t.Fatalf("first decision of the new rule: %s %s %+v", d.Outcome, fired(d), d.Fired)
	}
	// An invalid rule changes nothing.
	bad := rule
	bad.Condition = "count >"
	if err := a.Apply(ctx, "alice", bad); !errors.Is(err, ErrSpec) {
		t.Fatalf("invalid rule: %v", err)
	}
	if err := a.Disable(ctx, "bob", "three-in-ten"); err != nil {
		t.Fatal(err)
	}
	if d := authorize(t, a, "u1", "100", t0.Add(4*time.Minute)); d.Outcome != Approve {
		t.Fatalf("after disabling: %s %s", d.Outcome, fired(d))
	}
	if err := a.Remove(ctx, "bob", "velocity"); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(ctx, "bob", "velocity"); !errors.Is(err, ErrNoRule) {
		t.Fatalf("removing twice: %v", err)
	}
	// The audit trail: the default set it started from, then each change.
	var trail []string
	for rec, err := range l.ReadStream(ctx, RulesStream, store.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		trail = append(trail, rec.Type+":"+strings.Split(strings.Split(string(rec.Data), `"name":"`)[1], `"`)[0])
	}
	want := "[rule.applied:velocity rule.applied:spend rule.applied:three-in-ten rule.applied:three-in-ten rule.removed:velocity]"
	if fmt.Sprint(trail) != want {
		t.Fatalf("trail %v\nwant  %s", trail, want)
	}
	// A new authorizer on the same log has the same rules.
	b := openAuth(t, l)
	rs, vs := b.AllRules()
	if len(rs) != 2 || rs[0].Name != "spend" || !rs[1].Disabled || vs["three-in-ten"] != 2 {
		t.Fatalf("reloaded: %+v %v", rs, vs)
	}
}

// Concurrent decisions about the same users at the same instant: each
// decision sees every transaction decided before it, whatever the order
// they come in (a transaction that comes after a later one is decided on
// its own window, which does not reach forward).
func TestConcurrentAuthorize(t *testing.T) {
	a := openAuth(t, openLog(t, t.TempDir()))
	const users, per = 4, 15
	errs := make(chan error, users*per)
	outcomes := make(chan Action, users*per)
	for u := range users {
		for range per {
			go func() {
				d, err := a.Authorize(context.Background(), Transaction{User: fmt.Sprint("u", u), Amount: dec("1"), At: t0})
				errs <- err
				outcomes <- d.Outcome
			}()
		}
	}
	denied := 0
	for range users * per {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if <-outcomes == Deny {
			denied++
		}
	}
	// Each user's 15: 10 approved, 5 denied.
	if denied != users*5 {
		t.Fatalf("%d denied, want %d", denied, users*5)
	}
}

// A transaction that comes late is decided on what its own window holds,
// and counts where it belongs: the user's later decision whose window now
// holds 11 transactions is amended (approve → deny), in the same append.
func TestLateTransactionAmendsLaterDecision(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir())
	a := openAuth(t, l)
	var ids []event.ID
	for i := range 10 {
		d := authorize(t, a, "u1", "10", t0.Add(time.Duration(10+i)*time.Second))
		if d.Outcome != Approve {
			t.Fatalf("transaction at %ds: %s", 10+i, d.Outcome)
		}
		ids = append(ids, d.Transaction)
	}
	late := authorize(t, a, "u1", "10", t0.Add(5*time.Second))
	if late.Outcome != Approve || len(late.Amendments) != 1 {
		t.Fatalf("late transaction: %s, amendments %+v", late.Outcome, late.Amendments)
	}
	am := late.Amendments[0]
	if am.Transaction != ids[9] || am.Previous != Approve || am.Outcome != Deny || am.Cause != late.Transaction ||
		len(am.Fired) != 1 || am.Fired[0].Rule != "velocity" || am.Fired[0].Values[0].Value.String() != "11" {
		t.Fatalf("amendment %+v, want the transaction at 19 s, approve → deny by velocity(count=11)", am)
	}
	var types []string
	for rec, err := range l.ReadStream(ctx, "txn-u1", store.ReadStreamOptions{From: 21}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, rec.Type)
	}
	if fmt.Sprint(types) != "[transaction transaction.decided transaction.amended]" {
		t.Fatalf("the late append holds %v", types)
	}
	// Another late one, denied by velocity itself (its window at 6 s holds
	// 2): it is approved, and the decision at 19 s, already amended to
	// deny, is not amended again; the one at 18 s now sees 11 (5 s, 6 s
	// and 10 s..18 s) and is.
	late2 := authorize(t, a, "u1", "10", t0.Add(6*time.Second))
	if late2.Outcome != Approve || len(late2.Amendments) != 1 || late2.Amendments[0].Transaction != ids[8] {
		t.Fatalf("second late transaction: %s %+v", late2.Outcome, late2.Amendments)
	}
	// An amendment changes no state: a new transaction at 20 s sees
	// 5, 6 and 10..19 s in its window, 13 with itself.
	if d := authorize(t, a, "u1", "10", t0.Add(20*time.Second)); d.Outcome != Deny || fired(d) != "velocity(count=13)" {
		t.Fatalf("at 20 s: %s %s", d.Outcome, fired(d))
	}
}

// A daily limit: a tumbling day (from 05:00 UTC) so far, its sum with the
// candidate in it.
func TestTumblingDailyLimit(t *testing.T) {
	ctx := context.Background()
	a := openAuth(t, openLog(t, t.TempDir()))
	daily := Rule{Name: "daily", Key: "user_id", Window: &Window{Type: "tumbling", Size: Duration(24 * time.Hour), Offset: Duration(5 * time.Hour)},
		Condition: "sum(amount) > 1000", Action: Deny}
	if err := a.Apply(ctx, "test", daily); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at     time.Duration
		amount string
		want   Action
		fired  string
	}{
		{6 * time.Hour, "600", Approve, ""},
		{23 * time.Hour, "500", Deny, "daily(sum(amount)=1100)"}, // 600 + 500 in the day from 05:00
		{23*time.Hour + time.Minute, "400", Approve, ""},         // the denied 500 does not count
		{28 * time.Hour, "10", Deny, "daily(sum(amount)=1010)"},  // 04:00 the next day: still the same day
		{29 * time.Hour, "900", Approve, ""},                     // 05:00: a new day
	}
	for _, s := range steps {
		d := authorize(t, a, "u1", s.amount, day.Add(s.at))
		if d.Outcome != s.want || fired(d) != s.fired {
			t.Fatalf("at %v: %s %s, want %s %s", s.at, d.Outcome, fired(d), s.want, s.fired)
		}
	}
}

// A periodic checkpoint that cannot be written fails no decision: the
// decision is recorded; the error is there for the operator.
func TestCheckpointFailureFailsNoDecision(t *testing.T) {
	dir := t.TempDir()
	blocked := dir + "/file"
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Open(context.Background(), openLog(t, dir+"/log"), Options{Dir: blocked + "/rules", CheckpointEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		authorize(t, a, "u1", "1", t0.Add(time.Duration(i)*time.Second))
	}
	if a.CheckpointError() == nil {
		t.Fatal("no checkpoint error reported")
	}
	if err := a.Close(context.Background()); err == nil {
		t.Fatal("Close wrote a checkpoint under a file")
	}
}

// memCheckpoints is a CheckpointStore in memory.
type memCheckpoints struct {
	data         []byte
	loads, saves int
}

func (m *memCheckpoints) LoadCheckpoint(context.Context) ([]byte, error) {
	m.loads++
	return m.data, nil
}

func (m *memCheckpoints) SaveCheckpoint(_ context.Context, b []byte) error {
	m.saves++
	m.data = slices.Clone(b)
	return nil
}

// readCounter counts the records read through ReadAll.
type readCounter struct {
	store.Store
	n int
}

func (c *readCounter) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		for r, err := range c.Store.ReadAll(ctx, opts) {
			c.n++
			if !yield(r, err) {
				return
			}
		}
	}
}

// Options.Checkpoints keeps the checkpoint instead of a file (PostgreSQL,
// for nodes that keep nothing on disk): Close saves it, and Open starts
// from it instead of replaying the transactions it covers.
func TestCheckpointsInAStoreOfOneChoice(t *testing.T) {
	l := openLog(t, t.TempDir())
	cps := &memCheckpoints{}
	a, err := Open(context.Background(), l, Options{Shards: 4, Checkpoints: cps})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		authorize(t, a, fmt.Sprintf("u%d", i%3), "10", t0.Add(time.Duration(i)*time.Second))
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cps.saves != 1 || len(cps.data) == 0 {
		t.Fatalf("Close saved %d checkpoints (%d bytes)", cps.saves, len(cps.data))
	}
	withCk, without := &readCounter{Store: l}, &readCounter{Store: l}
	b, err := Open(context.Background(), withCk, Options{Shards: 4, Checkpoints: cps})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), without, Options{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	if cps.loads != 2 || withCk.n >= without.n {
		t.Fatalf("with the checkpoint (loaded %d times) Open read %d records, without %d", cps.loads, withCk.n, without.n)
	}
	// Both decide alike: u0 has ten transactions in the last minute.
	at := t0.Add(31 * time.Second)
	if d1, d2 := authorize(t, b, "u0", "10", at), authorize(t, c, "u0", "10", at.Add(time.Millisecond)); d1.Outcome != d2.Outcome || d1.Outcome != Deny {
		t.Fatalf("restored %s / %s, replayed %s / %s", d1.Outcome, fired(d1), d2.Outcome, fired(d2))
	}
}

// A process that takes deciding over from another reloads, and then
// counts what the other decided.
func TestReloadCountsWhatAnotherProcessDecided(t *testing.T) {
	l := openLog(t, t.TempDir())
	a, b := openAuth(t, l), openAuth(t, l)
	for i := range 10 {
		authorize(t, a, "u1", "1", t0.Add(time.Duration(i)*time.Second))
	}
	at := t0.Add(20 * time.Second)
	if d := authorize(t, b, "u1", "1", at); d.Outcome != Approve {
		t.Fatalf("without a reload b knows its own decisions only: %s %s", d.Outcome, fired(d))
	}
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := authorize(t, b, "u1", "1", at.Add(time.Second)); d.Outcome != Deny {
		t.Fatalf("after the reload (12th in a minute): %s %s", d.Outcome, fired(d))
	}
}

// A session window: a user's transactions with no pause longer than the
// gap, from the session's start to the candidate (within the window's
// size); a longer pause starts a new session.
func TestSessionWindow(t *testing.T) {
	ctx := context.Background()
	a := openAuth(t, openLog(t, t.TempDir()))
	burst := Rule{Name: "session_burst", Key: "user_id", Window: &Window{Type: "session", Size: Duration(time.Hour), Gap: Duration(5 * time.Minute)},
		Condition: "count > 3 || sum(amount) > 100", Action: Deny}
	if err := a.Apply(ctx, "test", burst); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at     time.Duration
		amount string
		want   Action
		fired  string
	}{
		{0, "10", Approve, ""},
		{4 * time.Minute, "10", Approve, ""},
		{8 * time.Minute, "10", Approve, ""}, // 4 min pauses: one session
		{12 * time.Minute, "10", Deny, "session_burst(count=4,sum(amount)=40)"},
		{30 * time.Minute, "10", Approve, ""}, // 18 min later: a new session
		{34 * time.Minute, "95", Deny, "session_burst(count=2,sum(amount)=105)"},
		{35 * time.Minute, "20", Approve, ""}, // the denied 95 does not count
		{40 * time.Minute, "5", Approve, ""},
		{44 * time.Minute, "1", Deny, "session_burst(count=4,sum(amount)=36)"}, // 30, 35, 40, 44 min: pauses of 5 min at most
	}
	for _, s := range steps {
		d := authorize(t, a, "u1", s.amount, t0.Add(s.at))
		if d.Outcome != s.want || fired(d) != s.fired {
			t.Fatalf("at %v: %s %s, want %s %s", s.at, d.Outcome, fired(d), s.want, s.fired)
		}
	}
	// A pause longer than the gap ends the session, even one bridged by
	// denied transactions: the last counted was at 40 min (44 and 47 are
	// denied), 10 min before 50.
	if d := authorize(t, a, "u1", "200", t0.Add(47*time.Minute)); d.Outcome != Deny {
		t.Fatalf("200 at 47 min: %s", d.Outcome)
	}
	if d := authorize(t, a, "u1", "10", t0.Add(50*time.Minute)); d.Outcome != Approve || fired(d) != "" {
		t.Fatalf("at 50 min, after a 6 min pause between counted transactions: %s %s", d.Outcome, fired(d))
	}
	// Another user's transactions are another session.
	if d := authorize(t, a, "u2", "10", t0.Add(45*time.Minute)); d.Outcome != Approve {
		t.Fatalf("u2: %s %s", d.Outcome, fired(d))
	}
}

// A sliding window's value is what the oldest of its windows that hold the
// transaction has counted so far: the most any of them has. Checked
// against every window that holds it, counted from scratch, over random
// sizes, slides, offsets and times (before the epoch too).
func TestSlidingIsTheFullestWindowSoFar(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		size := rapid.Int64Range(2, 40).Draw(rt, "size")
		slide := rapid.Int64Range(1, size).Draw(rt, "slide")
		offset := rapid.Int64Range(0, slide-1).Draw(rt, "offset")
		min := time.Minute.Milliseconds()
		dir, err := os.MkdirTemp("", "sliding")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		l, err := eventlog.Open(dir, eventlog.Options{Durability: eventlog.SyncNone})
		if err != nil {
			rt.Fatal(err)
		}
		defer l.Close()
		a, err := Open(context.Background(), l, Options{Shards: 2})
		if err != nil {
			rt.Fatal(err)
		}
		r := Rule{Name: "s", Key: "user_id", Window: &Window{Type: "sliding", Size: Duration(time.Duration(size) * time.Minute),
			Slide: Duration(time.Duration(slide) * time.Minute), Offset: Duration(time.Duration(offset) * time.Minute)},
			Condition: "count > 0", Action: Alert}
		if err := a.Apply(context.Background(), "test", r); err != nil {
			rt.Fatal(err)
		}
		for _, d := range Default() {
			if err := a.Disable(context.Background(), "test", d.Name); err != nil {
				rt.Fatal(err)
			}
		}
		var seen []int64
		at := rapid.Int64Range(-1000, 1000).Draw(rt, "start") * min
		for i := range rapid.IntRange(1, 30).Draw(rt, "n") {
			at += rapid.Int64Range(0, 20*min).Draw(rt, fmt.Sprint("step", i))
			seen = append(seen, at)
			d, err := a.Authorize(context.Background(), Transaction{User: "u", Amount: dec("1"), At: time.UnixMilli(at)})
			if err != nil {
				rt.Fatal(err)
			}
			var want int64
			// Every window start in (at − size, at]: from a start at or
			// before at − size, found by stepping back from the offset.
			s := offset * min
			for s > at-size*min {
				s -= slide * min * 1000
			}
			for ; s <= at; s += slide * min {
				if s <= at-size*min {
					continue
				}
				var n int64
				for _, x := range seen {
					if x >= s && x <= at {
						n++
					}
				}
				want = max(want, n)
			}
			if got := fired(d); got != fmt.Sprintf("s(count=%d)", want) {
				rt.Fatalf("at %d min: %s, want count=%d", at/min, got, want)
			}
		}
	})
}

// A late transaction amends other users' decisions through the windows it
// shares with them: here a merchant's. The rules not keyed by the shared
// field stand as they fired (u3's review), and a late transaction that
// changes only a user's windows leaves that user's decision denied by the
// merchant's.
func TestLateTransactionAmendsThroughMerchant(t *testing.T) {
	ctx := context.Background()
	a := openAuth(t, openLog(t, t.TempDir()))
	if err := a.Apply(ctx, "test",
		Rule{Name: "user_big", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "max(amount) > 1000", Action: Review},
		Rule{Name: "merchant_burst", Key: "merchant", Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "count > 3", Action: Deny},
	); err != nil {
		t.Fatal(err)
	}
	pay := func(user, merchant, amount string, sec int) Decision {
		t.Helper()
		d, err := a.Authorize(ctx, Transaction{User: user, Merchant: merchant, Amount: dec(amount), At: t0.Add(time.Duration(sec) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	pay("u1", "m1", "10", 10)
	pay("u2", "m1", "10", 11)
	d3 := pay("u3", "m1", "2000", 12)
	if d3.Outcome != Review || fired(d3) != "user_big(max(amount)=2000)" {
		t.Fatalf("u3 at 12 s: %s %s", d3.Outcome, fired(d3))
	}
	late := pay("u5", "m1", "10", 5)
	if late.Outcome != Approve || len(late.Amendments) != 1 {
		t.Fatalf("late transaction: %s, amendments %+v", late.Outcome, late.Amendments)
	}
	am := late.Amendments[0]
	got := fired(Decision{Fired: am.Fired})
	if am.Transaction != d3.Transaction || am.User != "u3" || am.Previous != Review || am.Outcome != Deny || got != "user_big(max(amount)=2000) merchant_burst(count=4)" {
		t.Fatalf("amendment of %s: %s → %s by %s; want u3's, review → deny by user_big(max(amount)=2000) merchant_burst(count=4)", am.User, am.Previous, am.Outcome, got)
	}
	// u9's decision at 23 s is denied by m2's windows; a late transaction
	// of u9 elsewhere changes u9's windows only, and the merchant's denial
	// stands: no amendment.
	for i, u := range []string{"u6", "u7", "u8"} {
		pay(u, "m2", "10", 20+i)
	}
	if d := pay("u9", "m2", "10", 23); d.Outcome != Deny {
		t.Fatalf("u9 at 23 s: %s %s", d.Outcome, fired(d))
	}
	if d := pay("u9", "m9", "5000", 22); d.Outcome != Review || len(d.Amendments) != 0 {
		t.Fatalf("u9's late transaction: %s, amendments %+v; want review and none", d.Outcome, d.Amendments)
	}
}

// Aggregates over expressions of the transaction: a sum of what was spent
// abroad, a count of the transactions at betting merchants.
func TestAggregateOverExpression(t *testing.T) {
	ctx := context.Background()
	a := openAuth(t, openLog(t, t.TempDir()))
	if err := a.Apply(ctx, "test",
		Rule{Name: "abroad", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(time.Hour)}, Condition: `sum(country != "US" ? amount : 0.0) > 100`, Action: Review},
		Rule{Name: "betting", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(time.Hour)}, Condition: `count(merchant in ["casino", "bookie"]) >= 2`, Action: Deny},
	); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		merchant, country, amount string
		want                      Action
		fired                     string
	}{
		{"grocer", "US", "500", Approve, ""},
		{"hotel", "FR", "60", Approve, ""},
		{"casino", "US", "10", Approve, ""},
		{"cafe", "IT", "50", Review, `abroad(sum(country != "US" ? amount : 0.0)=110)`},
		{"bookie", "US", "5", Deny, `abroad(sum(country != "US" ? amount : 0.0)=110) betting(count(merchant in ["casino", "bookie"])=2)`},
	}
	for i, s := range steps {
		d, err := a.Authorize(ctx, Transaction{User: "u1", Merchant: s.merchant, Country: s.country, Amount: dec(s.amount), At: t0.Add(time.Duration(i) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if d.Outcome != s.want || fired(d) != s.fired {
			t.Fatalf("step %d: %s %s, want %s %s", i, d.Outcome, fired(d), s.want, s.fired)
		}
	}
}

// An amendment made through a merchant is recorded in the late
// transaction's user's stream, not the amended decision's; after a
// restart it is still the latest word on that decision, so the next late
// transaction does not amend it again.
func TestAmendmentThroughMerchantSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir())
	rs := []Rule{
		{Name: "merchant_burst", Key: "merchant", Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "count > 3", Action: Deny},
		{Name: "user_pair", Key: "user_id", Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "count >= 2", Action: Deny},
	}
	a := openAuth(t, l)
	if err := a.Apply(ctx, "test", rs...); err != nil {
		t.Fatal(err)
	}
	pay := func(a *Authorizer, user, merchant string, ms int) Decision {
		t.Helper()
		d, err := a.Authorize(ctx, Transaction{User: user, Merchant: merchant, Amount: dec("10"), At: t0.Add(time.Duration(ms) * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	pay(a, "u1", "m1", 10_000)
	pay(a, "u2", "m1", 11_000)
	d3 := pay(a, "u3", "m1", 12_000)
	if late := pay(a, "u5", "m1", 5_000); len(late.Amendments) != 1 || late.Amendments[0].Transaction != d3.Transaction || late.Amendments[0].Outcome != Deny {
		t.Fatalf("u5's late transaction: amendments %+v, want u3's to deny", late.Amendments)
	}
	b := openAuth(t, l) // a restart: nothing in memory
	// u3's own late transaction: u3's decision at 12 s now also counts 2
	// for user_pair, and stays denied, as amended.
	if d := pay(b, "u3", "m9", 11_500); len(d.Amendments) != 0 {
		t.Fatalf("u3's late transaction after a restart amends %+v; u3's decision was already amended to deny", d.Amendments)
	}
}

// The index of each merchant's recent decisions forgets the merchants that
// go quiet: with a new merchant every second for 50 minutes, it holds
// about the last minute's, not every merchant seen.
func TestKeyedIndexForgetsQuietValues(t *testing.T) {
	ctx := context.Background()
	a, err := Open(ctx, openLog(t, t.TempDir()), Options{Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, "test", Rule{Name: "merchant_burst", Key: "merchant", Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "count > 3", Action: Deny}); err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if _, err := a.Authorize(ctx, Transaction{User: fmt.Sprint("u", i%7), Merchant: fmt.Sprint("m", i), Amount: dec("1"), At: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.shards[0].keyed); n > 1024+61 {
		t.Fatalf("the index holds %d merchants, want at most the last sweep's 1,024 and a minute's 61", n)
	}
}

// blockedSave is a CheckpointStore whose saves wait for release.
type blockedSave struct {
	saving  chan struct{}
	release chan struct{}
}

func (blockedSave) LoadCheckpoint(context.Context) ([]byte, error) { return nil, nil }

func (s blockedSave) SaveCheckpoint(context.Context, []byte) error {
	s.saving <- struct{}{}
	<-s.release
	return nil
}

// Decisions go on while a checkpoint is written: only its capture holds
// them back.
func TestDecisionsGoOnWhileACheckpointIsWritten(t *testing.T) {
	ctx := context.Background()
	st := blockedSave{saving: make(chan struct{}), release: make(chan struct{})}
	a, err := Open(ctx, openLog(t, t.TempDir()), Options{Shards: 8, Checkpoints: st, CheckpointEvery: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	authorize(t, a, "u1", "10", t0)
	done := make(chan error, 1)
	go func() { done <- a.Checkpoint() }()
	<-st.saving // the checkpoint is being written, and stays so until released
	if d := authorize(t, a, "u1", "10", t0.Add(time.Second)); d.Outcome != Approve {
		t.Fatalf("a decision during the save: %s", d.Outcome)
	}
	close(st.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
