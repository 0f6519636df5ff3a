package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Spec is a rule set as written in YAML or JSON.
type Spec struct {
	Rules []Rule `yaml:"rules" json:"rules"`
}

// Rule is one fraud rule: per value of Key, aggregates over windows of the
// transactions with that value, and a condition on them (CEL). When the
// condition holds for a transaction, the rule fires with its action.
//
//	name: velocity
//	key: data.user_id
//	window: {type: lookback, size: 60s}
//	condition: count > 10
//	action: deny
//	severity: high
type Rule struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Key is the transaction field the windows are kept per: user_id,
	// merchant, country, currency or attrs.NAME, with or without "data.".
	Key string `yaml:"key" json:"key"`
	// Window is the rule's window, when it has one; conditions name its
	// aggregates plainly: count, sum(amount).
	Window *Window `yaml:"window,omitempty" json:"window,omitempty"`
	// Windows are the rule's named windows, when it has several: conditions
	// name them before the aggregate, fast.count(), slow.sum(amount).
	Windows map[string]Window `yaml:"windows,omitempty" json:"windows,omitempty"`
	// Condition is a CEL expression over the aggregates (with the candidate
	// transaction in them) and the candidate's fields.
	Condition string `yaml:"condition" json:"condition"`
	Action    Action `yaml:"action" json:"action"`
	Severity  string `yaml:"severity,omitempty" json:"severity,omitempty"`
	// CountDenied makes the rule's windows count transactions that were
	// denied; by default a denied transaction does not count (it did not
	// happen), so a user cannot be locked out by their own refused attempts.
	CountDenied bool `yaml:"count_denied,omitempty" json:"count_denied,omitempty"`
	Disabled    bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
}

// Window is a window of a rule.
type Window struct {
	// Type is lookback: for each transaction, the transactions of its key
	// in the Size before it, itself included; or tumbling: the calendar
	// window of Size (starting at Offset plus a multiple of Size, from the
	// Unix epoch, UTC) that holds the transaction, from its start up to the
	// transaction ("today so far" for a 24h window); or sliding: windows of
	// Size, one starting every Slide (from Offset), of which the oldest that
	// holds the transaction, from its start up to the transaction — the one
	// that has counted the most of them so far; or session: the key's
	// session that holds the transaction, from its start up to the
	// transaction — the run of its transactions with no pause longer than
	// Gap between one and the next — within the Size before it (a session
	// is looked back on that far at most).
	Type   string   `yaml:"type" json:"type"`
	Size   Duration `yaml:"size" json:"size"`
	Slide  Duration `yaml:"slide,omitempty" json:"slide,omitempty"`
	Offset Duration `yaml:"offset,omitempty" json:"offset,omitempty"`
	Gap    Duration `yaml:"gap,omitempty" json:"gap,omitempty"`
}

// Action is what a rule that fires asks for.
type Action string

// The actions, from the weakest: a decision is the strongest action among
// the rules that fired (approve when none did).
const (
	Approve Action = "approve"
	Alert   Action = "alert"
	Review  Action = "review"
	Deny    Action = "deny"
)

func (a Action) rank() int { return slices.Index([]Action{Approve, Alert, Review, Deny}, a) }

// Severities a rule may have.
var severities = []string{"low", "medium", "high", "critical"}

// Duration is a time.Duration written as Go writes one ("60s", "5m").
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write it as 60s, 5m, 1h)", b)
	}
	*d = Duration(v)
	return nil
}

// ErrSpec is wrapped by every error about a rule set's content.
var ErrSpec = errors.New("rules: invalid rule set")

// FieldError says which field of a rule set is wrong, by its path
// (rules[1].window.size).
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return fmt.Sprintf("rules: %s: %v", e.Path, e.Err) }
func (e *FieldError) Unwrap() []error {
	return []error{ErrSpec, e.Err}
}

// Parse reads a rule set in YAML or JSON and validates it (see Validate);
// fields it does not know are errors, so a typo is not silently ignored.
func Parse(r io.Reader) (Spec, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Spec{}, fmt.Errorf("rules: read: %w", err)
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Spec{}, fmt.Errorf("%w: empty", ErrSpec)
		}
		return Spec{}, fmt.Errorf("%w: %v", ErrSpec, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Validate checks every rule, compiling its condition, and returns the
// first problem as a *FieldError.
func (s Spec) Validate() error {
	seen := map[string]int{}
	for i, r := range s.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		if j, dup := seen[r.Name]; dup {
			return &FieldError{path + ".name", fmt.Errorf("%q is also the name of rules[%d]", r.Name, j)}
		}
		seen[r.Name] = i
		if _, err := compile(r, path); err != nil {
			return err
		}
	}
	return nil
}

// check validates what a rule says apart from its condition.
func (r Rule) check(path string) error {
	if !namePattern.MatchString(r.Name) {
		return &FieldError{path + ".name", fmt.Errorf("%q: a name is 1 to 63 lower-case letters, digits, _ or -, starting with a letter", r.Name)}
	}
	if _, err := fieldOf(r.Key); err != nil {
		return &FieldError{path + ".key", err}
	}
	if r.Action.rank() <= 0 {
		return &FieldError{path + ".action", fmt.Errorf("%q: one of deny, review, alert", r.Action)}
	}
	if r.Severity != "" && !slices.Contains(severities, r.Severity) {
		return &FieldError{path + ".severity", fmt.Errorf("%q: one of %s", r.Severity, strings.Join(severities, ", "))}
	}
	if strings.TrimSpace(r.Condition) == "" {
		return &FieldError{path + ".condition", errors.New("missing")}
	}
	switch {
	case r.Window == nil && len(r.Windows) == 0:
		return &FieldError{path, errors.New("a rule needs a window (or windows)")}
	case r.Window != nil && len(r.Windows) > 0:
		return &FieldError{path, errors.New("a rule has a window or named windows, not both")}
	case r.Window != nil:
		return r.Window.check(path + ".window")
	}
	for _, name := range sortedNames(r.Windows) {
		if !namePattern.MatchString(name) || reserved[name] {
			return &FieldError{path + ".windows." + name, errors.New("a window's name is a lower-case identifier other than a field or aggregate name")}
		}
		if err := r.Windows[name].check(path + ".windows." + name); err != nil {
			return err
		}
	}
	return nil
}

// maxSpan bounds a window: state is kept for twice the longest one.
const maxSpan = 7 * 24 * time.Hour

func (w Window) check(path string) error {
	switch w.Type {
	case "lookback", "tumbling", "sliding", "session":
	default:
		return &FieldError{path + ".type", fmt.Errorf("%q: lookback, tumbling, sliding or session", w.Type)}
	}
	if g := time.Duration(w.Gap); w.Type == "session" && (g < time.Millisecond || g > time.Duration(w.Size) || g%time.Millisecond != 0) {
		return &FieldError{path + ".gap", fmt.Errorf("%v: a session's gap is from 1ms to its size, in whole milliseconds", g)}
	} else if w.Type != "session" && g != 0 {
		return &FieldError{path + ".gap", errors.New("only a session window has a gap")}
	}
	if d := time.Duration(w.Size); d < time.Millisecond || d > maxSpan || d%time.Millisecond != 0 {
		return &FieldError{path + ".size", fmt.Errorf("%v: between 1ms and %v, in whole milliseconds", d, maxSpan)}
	}
	if sl := time.Duration(w.Slide); w.Type == "sliding" && (sl < time.Millisecond || sl > time.Duration(w.Size) || sl%time.Millisecond != 0) {
		return &FieldError{path + ".slide", fmt.Errorf("%v: a sliding window's slide is from 1ms to its size, in whole milliseconds", sl)}
	} else if w.Type != "sliding" && sl != 0 {
		return &FieldError{path + ".slide", errors.New("only a sliding window has a slide")}
	}
	step := time.Duration(w.Size)
	if w.Type == "sliding" {
		step = time.Duration(w.Slide)
	}
	if o := time.Duration(w.Offset); o != 0 && (w.Type != "tumbling" && w.Type != "sliding" || o < 0 || o >= step || o%time.Millisecond != 0) {
		return &FieldError{path + ".offset", fmt.Errorf("%v: a tumbling window's offset is from 0 to less than its size, a sliding one's to less than its slide, in whole milliseconds", o)}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// reserved are the names a window cannot take: conditions already use them.
var reserved = map[string]bool{
	"count": true, "sum": true, "avg": true, "min": true, "max": true, "distinct": true,
	"amount": true, "user_id": true, "merchant": true, "country": true, "currency": true,
	"attrs": true, "data": true, "in": true, "true": true, "false": true, "null": true,
}
