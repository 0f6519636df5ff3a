package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDefaultRuleSet(t *testing.T) {
	rs := Default()
	if len(rs) != 2 || rs[0].Name != "velocity" || rs[1].Name != "spend" {
		t.Fatalf("default rules: %+v", rs)
	}
	if _, err := NewSet(rs); err != nil {
		t.Fatal(err)
	}
}

// Both reference rules share one engine over two spans.
func TestTermsShareEngines(t *testing.T) {
	s, err := NewSet(Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.groups) != 1 || len(s.groups[0].spans) != 2 {
		t.Fatalf("groups: %+v", s.groups)
	}
}

func TestParseErrorsPointAtTheField(t *testing.T) {
	const ok = `
rules:
  - name: r
    key: data.user_id
    window: {type: lookback, size: 60s}
    condition: count > 10
    action: deny
`
	cases := []struct {
		name, from, to, want string
	}{
		{"valid", "", "", ""},
		{"unknown field", "action: deny", "action: deny\n    acton: deny", "field acton not found"},
		{"bad name", "name: r", "name: R!", "rules[0].name"},
		{"bad key", "data.user_id", "data.nope", `rules[0].key: "data.nope" is not a transaction field`},
		{"bad action", "action: deny", "action: block", "rules[0].action"},
		{"bad size", "size: 60s", "size: sixty", "is not a duration"},
		{"zero size", "size: 60s", "size: 0s", "rules[0].window.size"},
		{"window kind", "type: lookback", "type: hopping", "rules[0].window.type"},
		{"session", "type: lookback, size: 60s", "type: session, size: 1h, gap: 5m", ""},
		{"session without gap", "type: lookback, size: 60s", "type: session, size: 1h", "rules[0].window.gap"},
		{"gap beyond size", "type: lookback, size: 60s", "type: session, size: 1h, gap: 2h", "rules[0].window.gap"},
		{"gap of lookback", "size: 60s", "size: 60s, gap: 5s", "only a session window has a gap"},
		{"sliding", "type: lookback, size: 60s", "type: sliding, size: 1h, slide: 5m, offset: 1m", ""},
		{"sliding without slide", "type: lookback, size: 60s", "type: sliding, size: 1h", "rules[0].window.slide"},
		{"slide beyond size", "type: lookback, size: 60s", "type: sliding, size: 1h, slide: 2h", "rules[0].window.slide"},
		{"slide of tumbling", "type: lookback, size: 60s", "type: tumbling, size: 1h, slide: 5m", "only a sliding window has a slide"},
		{"offset beyond slide", "type: lookback, size: 60s", "type: sliding, size: 1h, slide: 5m, offset: 5m", "rules[0].window.offset"},
		{"offset of lookback", "size: 60s", "size: 60s, offset: 1s", "rules[0].window.offset"},
		{"tumbling", "type: lookback, size: 60s", "type: tumbling, size: 24h, offset: 5h", ""},
		{"offset too big", "type: lookback, size: 60s", "type: tumbling, size: 24h, offset: 24h", "rules[0].window.offset"},
		{"syntax", "count > 10", "count >", "rules[0].condition: <input>:1:8: Syntax error"},
		{"undeclared", "count > 10", "cnt > 10", "rules[0].condition: <input>:1:1: undeclared reference to 'cnt'"},
		{"not bool", "count > 10", "count + 1", "rules[0].condition: is a int, not a bool"},
		{"sum of text", "count > 10", "sum(merchant) > 1", "only amount is a number"},
		{"no aggregate", "count > 10", "amount > 10", "reads no aggregate"},
		{"count of a condition", "count > 10", `count(country != "US") > 10`, ""},
		{"sum of an expression", "count > 10", `'sum(country == "US" ? amount : 0.0) > 10'`, ""},
		{"distinct of an expression", "count > 10", `'distinct(country == "US" ? merchant : "abroad") > 3'`, ""},
		{"named window over an expression", "window: {type: lookback, size: 60s}\n    condition: count > 10", "windows: {fast: {type: lookback, size: 1s}}\n    condition: fast.count(amount > 100.0) > 3", ""},
		{"count of a number", "count > 10", "count(amount) > 10", "no matching overload for 'count'"},
		{"aggregate in an argument", "count > 10", "'sum(count > 1 ? amount : 0.0) > 10'", "not another aggregate"},
		{"int in a sum", "count > 10", `'sum(country == "US" ? amount : 0) > 10'`, "no matching overload"},
		{"string in", "count > 10", `count > 1 && country in ["KP", "IR"]`, ""},
		{"both windows", "window: {type: lookback, size: 60s}", "window: {type: lookback, size: 60s}\n    windows: {fast: {type: lookback, size: 1s}}", "not both"},
		{"unnamed window", "window: {type: lookback, size: 60s}", "windows: {fast: {type: lookback, size: 1s}, slow: {type: lookback, size: 1m}}", "name one (fast, slow)"},
		{"named windows", "window: {type: lookback, size: 60s}\n    condition: count > 10", "windows: {fast: {type: lookback, size: 1s}, slow: {type: lookback, size: 1m}}\n    condition: fast.count() > 3 || slow.sum(amount) >= 100.5", ""},
		{"empty", ok, "", "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := ok
			if c.from != "" {
				if !strings.Contains(src, c.from) {
					t.Fatalf("%q not in the rule", c.from)
				}
				src = strings.Replace(src, c.from, c.to, 1)
			}
			_, err := Parse(strings.NewReader(src))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want it to say %q", err, c.want)
			case c.want != "" && !errors.Is(err, ErrSpec):
				t.Fatalf("error %v does not match ErrSpec", err)
			}
		})
	}
}

func TestDuplicateNames(t *testing.T) {
	r := Default()[0]
	if _, err := NewSet([]Rule{r, r}); err == nil || !strings.Contains(err.Error(), "rules[1].name") {
		t.Fatalf("duplicate names: %v", err)
	}
}

func TestAtMostEightKeys(t *testing.T) {
	var rs []Rule
	for i := range maxKeys + 1 {
		rs = append(rs, Rule{Name: fmt.Sprint("r", i), Key: fmt.Sprint("attrs.k", i),
			Window: &Window{Type: "lookback", Size: Duration(time.Minute)}, Condition: "count > 1", Action: Review})
	}
	if _, err := NewSet(rs[:maxKeys]); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSet(rs); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "more than 8 different fields") {
		t.Fatalf("nine keys: %v", err)
	}
}
