// Package txngen generates card traffic for the fraud rules: ordinary users
// who never break the reference rules, and a share of users with planted
// fraud (a burst of transactions, or a large spend in a few minutes), with
// the ground truth of what was planted, so detection can be scored exactly.
package txngen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
)

// Options shapes the traffic. The same options give the same traffic.
type Options struct {
	Users      int           // ordinary and fraudulent users together
	Rate       float64       // transactions per second of event time, on average
	FraudRatio float64       // the share of users with one planted episode each
	Duration   time.Duration // of event time
	Start      time.Time     // the first instant (2026-11-28T12:00:00Z when zero)
	Seed       uint64
}

// Episode is one planted fraud: a user's transactions that break a rule.
type Episode struct {
	User    string `json:"user_id"`
	Pattern string `json:"pattern"` // burst (more than 10 in 60 s) or spend (over $5,000 in 5 min)
	// From and To bound the episode's transactions.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Transactions are the episode's, in time order.
	Transactions []event.ID `json:"transactions"`
}

// Ordinary users stay well inside the reference rules: at most 8
// transactions in any 60 s and $3,000 in any 5 minutes (the generator skips
// a transaction that would break that).
const (
	ordinaryCount = 8
	ordinarySpend = 3000
)

// Generate calls yield with each transaction, in time order (ids fixed by
// the seed), and returns the planted episodes; yield returning false stops
// it.
func Generate(opts Options, yield func(rules.Transaction) bool) ([]Episode, error) {
	switch {
	case opts.Users < 1:
		return nil, fmt.Errorf("txngen: users %d: want at least 1", opts.Users)
	case opts.Rate <= 0 || math.IsInf(opts.Rate, 0) || math.IsNaN(opts.Rate):
		return nil, fmt.Errorf("txngen: rate %v: want a positive number", opts.Rate)
	case opts.FraudRatio < 0 || opts.FraudRatio > 1:
		return nil, fmt.Errorf("txngen: fraud ratio %v: want 0 to 1", opts.FraudRatio)
	case opts.Duration < 2*time.Minute:
		return nil, fmt.Errorf("txngen: duration %v: want at least 2m", opts.Duration)
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	}
	r := rand.New(rand.NewPCG(opts.Seed, 0x5354524154410001))
	ids := func() event.ID {
		var id event.ID
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		id[6] = id[6]&0x0f | 0x70 // a version 7 layout, random throughout
		id[8] = id[8]&0x3f | 0x80
		return id
	}
	frauds := int(math.Round(float64(opts.Users) * opts.FraudRatio))
	// Planted episodes, each for a user of its own (fraud-0, fraud-1, …).
	var planted []rules.Transaction
	var episodes []Episode
	for i := range frauds {
		user := fmt.Sprint("fraud-", i)
		var from time.Time
		var txns []rules.Transaction
		span := opts.Duration - 6*time.Minute
		if span <= 0 {
			span = opts.Duration / 2
		}
		from = opts.Start.Add(time.Duration(r.Int64N(int64(span))))
		pattern := "burst"
		if i%2 == 1 {
			pattern = "spend"
		}
		switch {
		case i == 0:
			// The reference burst: 11 transactions between 55 s and 65 s.
			from = opts.Start.Add(55 * time.Second)
			for k := range 11 {
				txns = append(txns, rules.Transaction{At: from.Add(time.Duration(k) * time.Second), Amount: cents(r, 500, 5000)})
			}
		case pattern == "burst":
			n := 11 + r.IntN(5)
			within := time.Duration(5+r.IntN(50)) * time.Second
			for k := range n {
				txns = append(txns, rules.Transaction{At: from.Add(within * time.Duration(k) / time.Duration(n)), Amount: cents(r, 500, 5000)})
			}
		default:
			// Three to five large purchases within four minutes, over $5,000.
			n := 3 + r.IntN(3)
			total := num.Dec{}
			for k := range n {
				amt := cents(r, 120000, 250000)
				total = total.Add(amt)
				txns = append(txns, rules.Transaction{At: from.Add(time.Duration(k) * 4 * time.Minute / time.Duration(n)), Amount: amt})
			}
			if total.Cmp(num.FromInt(5000)) <= 0 {
				txns[n-1].Amount = txns[n-1].Amount.Add(num.FromInt(5000).Sub(total)).Add(num.FromInt(1))
			}
		}
		ep := Episode{User: user, Pattern: pattern, From: txns[0].At.UTC(), To: txns[len(txns)-1].At.UTC()}
		for k := range txns {
			txns[k].User = user
			txns[k].At = txns[k].At.UTC().Truncate(time.Millisecond)
			txns[k].ID = ids()
			ep.Transactions = append(ep.Transactions, txns[k].ID)
		}
		ep.From, ep.To = txns[0].At, txns[len(txns)-1].At
		planted = append(planted, txns...)
		episodes = append(episodes, ep)
	}
	slices.SortStableFunc(planted, func(a, b rules.Transaction) int { return a.At.Compare(b.At) })

	// Ordinary traffic: Poisson arrivals, users uniform, amounts skewed
	// small; merged with the planted transactions in time order.
	ordinary := max(opts.Users-frauds, 1)
	type recent struct {
		at  []time.Time
		amt []num.Dec
	}
	seen := map[int]*recent{}
	end := opts.Start.Add(opts.Duration)
	at := opts.Start
	p := 0
	for {
		at = at.Add(time.Duration(r.ExpFloat64() / opts.Rate * float64(time.Second)))
		for p < len(planted) && !planted[p].At.After(at) {
			if !yield(planted[p]) {
				return episodes, nil
			}
			p++
		}
		if !at.Before(end) {
			break
		}
		u := r.IntN(ordinary)
		amt := cents(r, 100, 15000)
		if r.IntN(50) == 0 {
			amt = cents(r, 20000, 90000)
		}
		st := seen[u]
		if st == nil {
			st = &recent{}
			seen[u] = st
		}
		t := at.UTC().Truncate(time.Millisecond)
		// Keep the user's last 5 minutes; skip what would break the
		// ordinary limits.
		drop := 0
		for drop < len(st.at) && !st.at[drop].After(t.Add(-5*time.Minute)) {
			drop++
		}
		st.at, st.amt = st.at[drop:], st.amt[drop:]
		n60, sum := 0, amt
		for k := range st.at {
			if st.at[k].After(t.Add(-time.Minute)) {
				n60++
			}
			sum = sum.Add(st.amt[k])
		}
		if n60+1 > ordinaryCount || sum.Cmp(num.FromInt(ordinarySpend)) > 0 {
			continue
		}
		st.at, st.amt = append(st.at, t), append(st.amt, amt)
		if !yield(rules.Transaction{ID: ids(), User: fmt.Sprint("user-", u), Amount: amt, At: t}) {
			return episodes, nil
		}
	}
	// An episode may run on past the end.
	for ; p < len(planted); p++ {
		if !yield(planted[p]) {
			break
		}
	}
	return episodes, nil
}

// cents is an amount between lo and hi cents.
func cents(r *rand.Rand, lo, hi int64) num.Dec {
	return num.FromMicro((lo + r.Int64N(hi-lo+1)) * 10_000)
}

// Score is how decisions compare with what was planted.
type Score struct {
	Episodes, Caught int // planted episodes, and those with a transaction denied or sent to review
	// Flagged counts the ordinary transactions denied or sent to review:
	// false positives, since ordinary traffic breaks no rule.
	Flagged, Ordinary int
	Missed            []Episode
}

// Recall is the share of episodes caught (1 with none planted).
func (s Score) Recall() float64 {
	if s.Episodes == 0 {
		return 1
	}
	return float64(s.Caught) / float64(s.Episodes)
}

// Scorer tallies decisions against the ground truth.
type Scorer struct {
	episodes []Episode
	byTxn    map[event.ID]int
	caught   []bool
	s        Score
}

func NewScorer(episodes []Episode) *Scorer {
	sc := &Scorer{episodes: episodes, byTxn: map[event.ID]int{}, caught: make([]bool, len(episodes))}
	for i, ep := range episodes {
		for _, id := range ep.Transactions {
			sc.byTxn[id] = i
		}
	}
	return sc
}

// Add counts one decision.
func (sc *Scorer) Add(d rules.Decision) {
	flagged := d.Outcome == rules.Deny || d.Outcome == rules.Review
	if i, ok := sc.byTxn[d.Transaction]; ok {
		sc.caught[i] = sc.caught[i] || flagged
		return
	}
	sc.s.Ordinary++
	if flagged {
		sc.s.Flagged++
	}
}

// Score returns the tally.
func (sc *Scorer) Score() Score {
	s := sc.s
	s.Episodes = len(sc.episodes)
	for i, c := range sc.caught {
		if c {
			s.Caught++
		} else {
			s.Missed = append(s.Missed, sc.episodes[i])
		}
	}
	return s
}
