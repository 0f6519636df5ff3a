package rules

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Rule changes are events in the rules stream, so the log holds who changed
// what and when, and the rule set in force is a fold of that stream (the
// default set while it is empty).
const (
	RulesStream     = "rules"
	TypeRuleApplied = "rule.applied"
	TypeRuleRemoved = "rule.removed"
)

// Change is the data of a rule event.
type Change struct {
	Rule    Rule      `json:"rule"` // the rule as applied; only its name for a removal
	Version uint64    `json:"version"`
	By      string    `json:"by,omitempty"`
	At      time.Time `json:"at"`
}

//go:embed default.yaml
var defaultYAML []byte

// Default is the rule set in force until the log records one: the two
// reference rules, more than 10 transactions in any 60 s, and more than
// $5,000 in any 5 minutes, both per user and both denying.
func Default() []Rule {
	s, err := Parse(bytes.NewReader(defaultYAML))
	if err != nil {
		panic(err) // checked by a test
	}
	return s.Rules
}

// ErrNoRule is returned for a change to a rule the set does not have.
var ErrNoRule = errors.New("rules: no such rule")

// ruleLog is the rules stream folded: every rule (disabled ones too), in
// the order first applied, each one's version, and the stream's version (0:
// no change recorded, the default set is in force).
type ruleLog struct {
	rules    []Rule
	versions map[string]uint64
	stream   uint64
}

// LoadRules returns the rules in force (disabled ones included) and each
// one's version.
func LoadRules(ctx context.Context, st store.Store) ([]Rule, map[string]uint64, error) {
	l, err := loadRules(ctx, st)
	return l.rules, l.versions, err
}

func loadRules(ctx context.Context, st store.Store) (ruleLog, error) {
	var rules []Rule
	versions := map[string]uint64{}
	var stream uint64
	for rec, err := range st.ReadStream(ctx, RulesStream, store.ReadStreamOptions{}) {
		if errors.Is(err, store.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return ruleLog{}, fmt.Errorf("rules: load: %w", err)
		}
		stream = rec.Version
		var c Change
		if err := json.Unmarshal(rec.Data, &c); err != nil {
			return ruleLog{}, fmt.Errorf("rules: load: %s at %d: %w", rec.Type, rec.Position, err)
		}
		i := slices.IndexFunc(rules, func(r Rule) bool { return r.Name == c.Rule.Name })
		switch rec.Type {
		case TypeRuleApplied:
			if i < 0 {
				rules = append(rules, c.Rule)
			} else {
				rules[i] = c.Rule
			}
			versions[c.Rule.Name] = c.Version
		case TypeRuleRemoved:
			if i >= 0 {
				rules = slices.Delete(rules, i, i+1)
			}
			delete(versions, c.Rule.Name)
		}
	}
	if stream == 0 {
		rules = Default()
		for _, r := range rules {
			versions[r.Name] = 0
		}
	}
	return ruleLog{rules, versions, stream}, nil
}

// Apply adds rules or replaces the ones of the same names (a new version),
// records the change in the log, and backfills the windows the new rules
// need from the recorded transactions (see switchRules), so that the new
// rules decide the next transaction as if they had always been in force.
// Nothing changes when a rule is invalid.
func (a *Authorizer) Apply(ctx context.Context, by string, rules ...Rule) error {
	return a.change(ctx, by, func(cur []Rule) ([]Rule, []Change, error) {
		next := slices.Clone(cur)
		var changes []Change
		for _, r := range rules {
			if i := slices.IndexFunc(next, func(x Rule) bool { return x.Name == r.Name }); i >= 0 {
				next[i] = r
			} else {
				next = append(next, r)
			}
			changes = append(changes, Change{Rule: r})
		}
		return next, changes, nil
	})
}

// Disable turns a rule off (a new version of it, disabled); Enable on again.
func (a *Authorizer) Disable(ctx context.Context, by, name string) error {
	return a.setDisabled(ctx, by, name, true)
}

// Enable turns a disabled rule on again.
func (a *Authorizer) Enable(ctx context.Context, by, name string) error {
	return a.setDisabled(ctx, by, name, false)
}

func (a *Authorizer) setDisabled(ctx context.Context, by, name string, off bool) error {
	return a.change(ctx, by, func(cur []Rule) ([]Rule, []Change, error) {
		i := slices.IndexFunc(cur, func(x Rule) bool { return x.Name == name })
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: %q", ErrNoRule, name)
		}
		next := slices.Clone(cur)
		next[i].Disabled = off
		return next, []Change{{Rule: next[i]}}, nil
	})
}

// Remove deletes a rule.
func (a *Authorizer) Remove(ctx context.Context, by, name string) error {
	return a.change(ctx, by, func(cur []Rule) ([]Rule, []Change, error) {
		i := slices.IndexFunc(cur, func(x Rule) bool { return x.Name == name })
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: %q", ErrNoRule, name)
		}
		return slices.Delete(slices.Clone(cur), i, i+1), []Change{{Rule: Rule{Name: name}}}, nil
	})
}

// AllRules returns every rule, disabled ones included, with its version.
func (a *Authorizer) AllRules() ([]Rule, map[string]uint64) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return slices.Clone(a.log.rules), maps.Clone(a.log.versions)
}

// change validates the rule set edit makes, fills its new windows (see
// fill), appends its events (the first change to a log that has no rule
// events records the default set it starts from), and puts it in force.
func (a *Authorizer) change(ctx context.Context, by string, edit func([]Rule) ([]Rule, []Change, error)) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	start := time.Now()
	// The rule log read here stays the one in force until the change is
	// in place: changes and reloads take turns.
	a.mu.RLock()
	cur := a.log
	next, changes, err := edit(cur.rules)
	var f *fill
	if err == nil {
		var set *Set
		if set, err = NewSet(next); err == nil {
			f, err = a.prepare(set)
		}
	}
	a.mu.RUnlock()
	if err != nil {
		return err
	}
	// Off to the side, decisions going on: nothing is recorded yet, so a
	// failure here changes nothing.
	if err := f.run(ctx, a); err != nil {
		return err
	}
	if afterFill != nil {
		afterFill()
	}
	a.saveMu.Lock() // before a.mu, as Checkpoint takes them
	defer a.saveMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	held := time.Now()
	var evs []event.Event
	now := a.opts.Now().UTC()
	versions := map[string]uint64{}
	for k, v := range cur.versions {
		versions[k] = v
	}
	// Exactly the version read: a change made meanwhile by another
	// process fails rather than being overwritten unseen.
	expected := store.Exactly(cur.stream)
	if cur.stream == 0 {
		expected = store.NoStream
		for _, r := range cur.rules {
			data, err := json.Marshal(Change{Rule: r, Version: 0, By: "strata (default rule set)", At: now})
			if err != nil {
				return err
			}
			evs = append(evs, event.Event{Type: TypeRuleApplied, Data: data})
		}
	}
	for _, c := range changes {
		c.By, c.At = by, now
		typ := TypeRuleApplied
		if slices.IndexFunc(next, func(r Rule) bool { return r.Name == c.Rule.Name }) < 0 {
			typ = TypeRuleRemoved
			delete(versions, c.Rule.Name)
		} else {
			versions[c.Rule.Name]++
			c.Version = versions[c.Rule.Name]
		}
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		evs = append(evs, event.Event{Type: typ, Data: data})
	}
	res, err := a.st.Append(ctx, RulesStream, expected, evs...)
	if err != nil {
		return fmt.Errorf("rules: record change: %w", err)
	}
	l := ruleLog{next, versions, res.Version}
	if a.lost.Load() != nil {
		// The windows disagree with the log: all of them from the log.
		if err := a.rebuild(ctx, l); err != nil {
			a.lose(err)
			return err
		}
		return nil
	}
	// What was recorded during the replay: decisions are held, so this
	// reaches the end of the log.
	if err := f.run(ctx, a); err != nil {
		// The change is recorded but its windows are not filled.
		a.lose(err)
		return err
	}
	a.install(f, l)
	f.Took, f.Held = time.Since(start), time.Since(held)
	a.backfill = f.Backfill
	if a.opts.Checkpoints != nil {
		// So that a restart need not replay the whole log for the new
		// rule set (a checkpoint is for one rule set).
		if err := a.checkpoint(); err != nil {
			a.ckErr.Store(&err)
		}
	}
	return nil
}

// afterFill, when set (by tests), runs between a rule change's replay off
// to the side and its end with decisions held.
var afterFill func()

// Reload rebuilds the windows from the log — the checkpoint, then every
// transaction after it — and reloads the rules, holding every decision
// back meanwhile. It is for a process that takes deciding over from
// another (a cluster's new rules leader): what the other decided is in the
// log, not in this process's windows.
func (a *Authorizer) Reload(ctx context.Context) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := loadRules(ctx, a.st)
	if err != nil {
		return err
	}
	return a.rebuild(ctx, l)
}
