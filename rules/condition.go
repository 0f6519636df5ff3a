package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"

	"github.com/stratadb/strata/num"
)

// A condition is written in CEL and checked by CEL (types, names, with
// CEL's own error messages and positions), then compiled once into Go
// closures over exact decimals: a rule is evaluated for every transaction,
// and `count > 10` must cost a comparison, not an interpretation.

// aggKind is an aggregate a condition reads over a window.
type aggKind uint8

const (
	aggCount aggKind = iota
	aggSum
	aggAvg
	aggMin
	aggMax
	aggDistinct
)

var aggNames = map[string]aggKind{"count": aggCount, "sum": aggSum, "avg": aggAvg, "min": aggMin, "max": aggMax, "distinct": aggDistinct}

func (k aggKind) String() string {
	for n, v := range aggNames {
		if v == k {
			return n
		}
	}
	return "?"
}

// term is one aggregate a rule reads: over the transactions with the same
// key value in the span before (and including) the candidate.
type term struct {
	key      field
	span     time.Duration // an aligned window's size, a session's bound
	tumbling bool          // aligned: tumbling, or sliding when slide < span
	slide    time.Duration // an aligned window's (its size when tumbling)
	offset   time.Duration // an aligned window's
	session  bool
	gap      time.Duration // a session's
	agg      aggKind
	field    field // the aggregate's argument; zero for count
	// expr is an aggregate's argument that is an expression over the
	// transaction (the source, normalised), not a field; its value is
	// terms.exprs[expr]. count(condition) is the sum of 1 where it holds.
	expr        string
	countDenied bool
}

// evalCtx is what a compiled condition reads: the candidate and the value
// of every term (by its slot in the rule set's term table).
type evalCtx struct {
	txn  *Transaction
	vals []num.Dec
}

// terms numbers the distinct terms of a rule set.
type terms struct {
	list  []term
	index map[term]int
	exprs map[string]node // aggregates' argument expressions, by source
}

// numOf and strOf are an argument expression's value for a transaction.
func (n node) numOf(t *Transaction) num.Dec {
	x := evalCtx{txn: t}
	return n.n(&x)
}

func (n node) strOf(t *Transaction) string {
	x := evalCtx{txn: t}
	return n.s(&x)
}

func (ts *terms) slot(t term) int {
	if i, ok := ts.index[t]; ok {
		return i
	}
	if ts.index == nil {
		ts.index = map[term]int{}
	}
	ts.index[t] = len(ts.list)
	ts.list = append(ts.list, t)
	return len(ts.list) - 1
}

// compiledRule is a rule ready to evaluate.
type compiledRule struct {
	Rule
	keyIdx int      // its key field's index in its Set's keys
	slots  []int    // its terms' slots, in the order its values are reported
	names  []string // how the condition wrote each of them
	cond   func(*evalCtx) bool
}

// compile checks a rule and compiles its condition with a table of its own.
func compile(r Rule, path string) (*compiledRule, error) {
	var ts terms
	return compileInto(r, path, &ts)
}

func compileInto(r Rule, path string, ts *terms) (*compiledRule, error) {
	if err := r.check(path); err != nil {
		return nil, err
	}
	key, _ := fieldOf(r.Key)
	c := &condCompiler{rule: r, key: key, ts: ts, seen: map[int]bool{}, out: &compiledRule{Rule: r}}
	env, err := c.env()
	if err != nil {
		return nil, fmt.Errorf("rules: %s: condition environment: %w", path, err)
	}
	ast, iss := env.Compile(r.Condition)
	if iss != nil && iss.Err() != nil {
		return nil, &FieldError{path + ".condition", errors.New(strings.TrimPrefix(iss.Err().Error(), "ERROR: "))}
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, &FieldError{path + ".condition", fmt.Errorf("is a %v, not a bool", ast.OutputType())}
	}
	c.ast = ast.NativeRep()
	n, err := c.expr(c.ast.Expr())
	if err != nil {
		return nil, &FieldError{path + ".condition", err}
	}
	if len(c.out.slots) == 0 {
		return nil, &FieldError{path + ".condition", errors.New("reads no aggregate of the rule's window (count, sum(amount), ...): a rule about one transaction alone is not a window rule")}
	}
	c.out.cond = n.b
	return c.out, nil
}

var windowType = cel.OpaqueType("window")

type condCompiler struct {
	rule Rule
	key  field
	ts   *terms
	ast  *celast.AST
	seen map[int]bool
	out  *compiledRule
	// inArg is set while an aggregate's argument compiles: it reads the
	// transaction, not another aggregate.
	inArg bool
}

func (c *condCompiler) env() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.Variable("amount", cel.DoubleType),
		cel.Variable("user_id", cel.StringType),
		cel.Variable("merchant", cel.StringType),
		cel.Variable("country", cel.StringType),
		cel.Variable("currency", cel.StringType),
		cel.Variable("attrs", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("data", cel.MapType(cel.StringType, cel.DynType)),
	}
	// The plain aggregates are declared for rules with named windows too,
	// so that using one there gets this package's error ("name one"), not
	// an undeclared reference.
	opts = append(opts, cel.Variable("count", cel.IntType))
	for name := range c.rule.Windows {
		opts = append(opts, cel.Variable(name, windowType))
	}
	for name, k := range aggNames {
		result := cel.DoubleType
		if k == aggCount || k == aggDistinct {
			result = cel.IntType
		}
		if k == aggCount {
			opts = append(opts, cel.Function(name,
				cel.MemberOverload("window_count", []*cel.Type{windowType}, result),
				cel.MemberOverload("window_count_bool", []*cel.Type{windowType, cel.BoolType}, result),
				cel.Overload("count_bool", []*cel.Type{cel.BoolType}, result)))
			continue
		}
		opts = append(opts, cel.Function(name,
			cel.MemberOverload("window_"+name, []*cel.Type{windowType, cel.DynType}, result),
			cel.Overload(name+"_dyn", []*cel.Type{cel.DynType}, result)))
	}
	return cel.NewEnv(opts...)
}

// node is a compiled expression of one of three types.
type node struct {
	typ byte // 'b' bool, 'n' number, 's' string
	b   func(*evalCtx) bool
	n   func(*evalCtx) num.Dec
	s   func(*evalCtx) string
}

func (c *condCompiler) at(e celast.Expr) string {
	loc := c.ast.SourceInfo().GetStartLocation(e.ID())
	return fmt.Sprintf("column %d", loc.Column()+1)
}

func (c *condCompiler) expr(e celast.Expr) (node, error) {
	switch e.Kind() {
	case celast.LiteralKind:
		return c.literal(e)
	case celast.IdentKind:
		name := e.AsIdent()
		if name == "count" {
			return c.term(e, aggCount, "", field{}, "", "count")
		}
		if _, ok := c.rule.Windows[name]; ok {
			return node{}, fmt.Errorf("%s: window %s is read through an aggregate: %s.count(), %s.sum(amount)", c.at(e), name, name, name)
		}
		return c.candidate(e, name)
	case celast.SelectKind:
		sel := e.AsSelect()
		if op := sel.Operand(); op.Kind() == celast.IdentKind && (op.AsIdent() == "data" || op.AsIdent() == "attrs") && !sel.IsTestOnly() {
			path := sel.FieldName()
			if op.AsIdent() == "attrs" {
				path = "attrs." + path
			}
			return c.candidate(e, path)
		}
	case celast.CallKind:
		return c.call(e)
	}
	return node{}, fmt.Errorf("%s: this form is not supported in conditions (use aggregates, fields, literals, comparisons, && || !, + -, c ? a : b, in [...])", c.at(e))
}

func (c *condCompiler) literal(e celast.Expr) (node, error) {
	switch v := e.AsLiteral().(type) {
	case types.Bool:
		b := bool(v)
		return node{typ: 'b', b: func(*evalCtx) bool { return b }}, nil
	case types.String:
		s := string(v)
		return node{typ: 's', s: func(*evalCtx) string { return s }}, nil
	case types.Int:
		d := num.FromInt(int64(v))
		return node{typ: 'n', n: func(*evalCtx) num.Dec { return d }}, nil
	case types.Uint:
		d, err := num.Parse(strconv.FormatUint(uint64(v), 10))
		if err != nil {
			return node{}, err
		}
		return node{typ: 'n', n: func(*evalCtx) num.Dec { return d }}, nil
	case types.Double:
		// The literal as written in decimal (5000.01 is 5000.01, not the
		// nearest binary fraction).
		d, err := num.Parse(strconv.FormatFloat(float64(v), 'f', -1, 64))
		if err != nil {
			return node{}, fmt.Errorf("%s: %v", c.at(e), err)
		}
		return node{typ: 'n', n: func(*evalCtx) num.Dec { return d }}, nil
	}
	return node{}, fmt.Errorf("%s: literal of type %v is not supported", c.at(e), e.AsLiteral().Type())
}

// candidate is a field of the transaction being decided.
func (c *condCompiler) candidate(e celast.Expr, path string) (node, error) {
	f, err := fieldOf(path)
	if err != nil {
		return node{}, fmt.Errorf("%s: %v", c.at(e), err)
	}
	if f.numeric() {
		return node{typ: 'n', n: func(x *evalCtx) num.Dec { return x.txn.Amount }}, nil
	}
	return node{typ: 's', s: func(x *evalCtx) string { return f.str(x.txn) }}, nil
}

// term compiles an aggregate over a window: windowName "" for the rule's
// one window.
// label is how the value is reported: count, sum(amount),
// count(country != "US").
func (c *condCompiler) term(e celast.Expr, k aggKind, windowName string, arg field, expr, label string) (node, error) {
	if c.inArg {
		return node{}, fmt.Errorf("%s: an aggregate's argument reads the transaction, not another aggregate", c.at(e))
	}
	var w Window
	if windowName == "" {
		if c.rule.Window == nil {
			return node{}, fmt.Errorf("%s: %v: the rule has several windows; name one (%s)", c.at(e), k, strings.Join(sortedNames(c.rule.Windows), ", "))
		}
		w = *c.rule.Window
	} else {
		w = c.rule.Windows[windowName]
	}
	t := term{key: c.key, span: time.Duration(w.Size), agg: k, field: arg, expr: expr, countDenied: c.rule.CountDenied,
		tumbling: w.Type == "tumbling" || w.Type == "sliding", offset: time.Duration(w.Offset),
		session: w.Type == "session", gap: time.Duration(w.Gap)}
	switch w.Type {
	case "tumbling":
		t.slide = t.span
	case "sliding":
		t.slide = time.Duration(w.Slide)
	}
	slot := c.ts.slot(t)
	if !c.seen[slot] {
		c.seen[slot] = true
		c.out.slots = append(c.out.slots, slot)
		name := label
		if windowName != "" {
			name = windowName + "." + name
		}
		c.out.names = append(c.out.names, name)
	}
	return node{typ: 'n', n: func(x *evalCtx) num.Dec { return x.vals[slot] }}, nil
}

func (c *condCompiler) call(e celast.Expr) (node, error) {
	call := e.AsCall()
	fn, args := call.FunctionName(), call.Args()
	if k, ok := aggNames[fn]; ok {
		window := ""
		if call.IsMemberFunction() {
			t := call.Target()
			if t.Kind() != celast.IdentKind {
				return node{}, fmt.Errorf("%s: %s() is called on a window's name", c.at(e), fn)
			}
			window = t.AsIdent()
		}
		if len(args) == 0 {
			return c.term(e, k, window, field{}, "", k.String())
		}
		// A field, as distinct(merchant) or sum(amount); or an expression
		// over the transaction, as sum(country != "US" ? amount : 0) or
		// count(merchant in ["casino"]).
		if f, err := c.fieldArg(args[0]); err == nil && k != aggCount {
			if k != aggDistinct && !f.numeric() {
				return node{}, fmt.Errorf("%s: %s(%v): only amount is a number", c.at(e), fn, f)
			}
			return c.term(e, k, window, f, "", fn+"("+f.String()+")")
		}
		c.inArg = true
		n, err := c.expr(args[0])
		c.inArg = false
		if err != nil {
			return node{}, err
		}
		want := map[aggKind]byte{aggCount: 'b', aggDistinct: 's'}[k]
		if want == 0 {
			want = 'n'
		}
		if n.typ != want {
			return node{}, fmt.Errorf("%s: %s() takes %s", c.at(args[0]), fn, map[byte]string{'b': "a condition", 's': "a string", 'n': "a number"}[want])
		}
		text, err := parser.Unparse(args[0], c.ast.SourceInfo())
		if err != nil {
			return node{}, fmt.Errorf("%s: %v", c.at(args[0]), err)
		}
		label := fn + "(" + c.source(args[0], text) + ")"
		if k == aggCount {
			// How many hold: the sum of 1 for each.
			cond := n.b
			one, zero := num.FromInt(1), num.Dec{}
			n = node{typ: 'n', n: func(x *evalCtx) num.Dec {
				if cond(x) {
					return one
				}
				return zero
			}}
			k, text = aggSum, "count:"+text
		}
		if c.ts.exprs == nil {
			c.ts.exprs = map[string]node{}
		}
		c.ts.exprs[text] = n
		return c.term(e, k, window, field{}, text, label)
	}
	ns := make([]node, len(args))
	for i, a := range args {
		if fn == operators.In && i == 1 {
			break
		}
		n, err := c.expr(a)
		if err != nil {
			return node{}, err
		}
		ns[i] = n
	}
	switch fn {
	case operators.LogicalAnd:
		a, b := ns[0].b, ns[1].b
		return node{typ: 'b', b: func(x *evalCtx) bool { return a(x) && b(x) }}, nil
	case operators.LogicalOr:
		a, b := ns[0].b, ns[1].b
		return node{typ: 'b', b: func(x *evalCtx) bool { return a(x) || b(x) }}, nil
	case operators.LogicalNot:
		a := ns[0].b
		return node{typ: 'b', b: func(x *evalCtx) bool { return !a(x) }}, nil
	case operators.Negate:
		if ns[0].typ == 'n' {
			a := ns[0].n
			return node{typ: 'n', n: func(x *evalCtx) num.Dec { return a(x).Neg() }}, nil
		}
	case operators.Add, operators.Subtract:
		if ns[0].typ == 'n' && ns[1].typ == 'n' {
			a, b := ns[0].n, ns[1].n
			if fn == operators.Add {
				return node{typ: 'n', n: func(x *evalCtx) num.Dec { return a(x).Add(b(x)) }}, nil
			}
			return node{typ: 'n', n: func(x *evalCtx) num.Dec { return a(x).Sub(b(x)) }}, nil
		}
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		return c.compare(e, fn, ns[0], ns[1])
	case operators.Conditional:
		if ns[0].typ == 'b' && ns[1].typ == ns[2].typ {
			cond, a, b := ns[0].b, ns[1], ns[2]
			switch a.typ {
			case 'n':
				return node{typ: 'n', n: func(x *evalCtx) num.Dec {
					if cond(x) {
						return a.n(x)
					}
					return b.n(x)
				}}, nil
			case 's':
				return node{typ: 's', s: func(x *evalCtx) string {
					if cond(x) {
						return a.s(x)
					}
					return b.s(x)
				}}, nil
			}
			return node{typ: 'b', b: func(x *evalCtx) bool {
				if cond(x) {
					return a.b(x)
				}
				return b.b(x)
			}}, nil
		}
	case operators.In:
		return c.in(e, ns[0], args[1])
	}
	return node{}, fmt.Errorf("%s: %s is not supported in conditions (use aggregates, fields, literals, comparisons, && || !, + -, c ? a : b, in [...])", c.at(e), strings.Trim(fn, "_@"))
}

// source is e as the condition wrote it, to report; normalised (as CEL
// unparses it) when its span cannot be told.
func (c *condCompiler) source(e celast.Expr, normalised string) string {
	start, stop := int32(-1), int32(-1)
	var walk func(e celast.Expr) bool
	walk = func(e celast.Expr) bool {
		r, ok := c.ast.SourceInfo().GetOffsetRange(e.ID())
		if !ok {
			return false
		}
		if start < 0 || r.Start < start {
			start = r.Start
		}
		stop = max(stop, r.Stop)
		switch e.Kind() {
		case celast.CallKind:
			call := e.AsCall()
			if call.IsMemberFunction() && !walk(call.Target()) {
				return false
			}
			for _, a := range call.Args() {
				if !walk(a) {
					return false
				}
			}
		case celast.SelectKind:
			return walk(e.AsSelect().Operand())
		case celast.ListKind:
			for _, el := range e.AsList().Elements() {
				if !walk(el) {
					return false
				}
			}
		case celast.IdentKind, celast.LiteralKind:
		default:
			return false
		}
		return true
	}
	src := []rune(c.rule.Condition)
	if !walk(e) || start < 0 || int(stop) > len(src) || start >= stop {
		return normalised
	}
	// The span ends at the last token inside the argument: a list's
	// closing bracket comes after it. A span that cuts through the
	// parentheses the argument was written with is not reported.
	depth := 0
	for _, r := range src[start:stop] {
		switch r {
		case '(', '[':
			depth++
		case ')', ']':
			if depth--; depth < 0 {
				return normalised
			}
		}
	}
	for ; depth > 0 && int(stop) < len(src); stop++ {
		switch src[stop] {
		case ']', ')':
			depth--
		case ' ':
		default:
			return normalised
		}
	}
	if depth != 0 {
		return normalised
	}
	return string(src[start:stop])
}

// fieldArg reads an aggregate's argument: a field, as amount, data.amount
// or attrs.channel.
func (c *condCompiler) fieldArg(e celast.Expr) (field, error) {
	path := ""
	switch e.Kind() {
	case celast.IdentKind:
		path = e.AsIdent()
	case celast.SelectKind:
		if op := e.AsSelect().Operand(); op.Kind() == celast.IdentKind {
			path = op.AsIdent() + "." + e.AsSelect().FieldName()
		}
	}
	f, err := fieldOf(path)
	if err != nil {
		return field{}, fmt.Errorf("%s: an aggregate's argument is a transaction field: %v", c.at(e), err)
	}
	return f, nil
}

func (c *condCompiler) compare(e celast.Expr, fn string, a, b node) (node, error) {
	var cmp func(*evalCtx) int
	switch {
	case a.typ == 'n' && b.typ == 'n':
		an, bn := a.n, b.n
		cmp = func(x *evalCtx) int { return an(x).Cmp(bn(x)) }
	case a.typ == 's' && b.typ == 's':
		as, bs := a.s, b.s
		cmp = func(x *evalCtx) int { return strings.Compare(as(x), bs(x)) }
	case a.typ == 'b' && b.typ == 'b' && (fn == operators.Equals || fn == operators.NotEquals):
		ab, bb := a.b, b.b
		cmp = func(x *evalCtx) int {
			if ab(x) == bb(x) {
				return 0
			}
			return 1
		}
	default:
		return node{}, fmt.Errorf("%s: cannot compare these", c.at(e))
	}
	var f func(*evalCtx) bool
	switch fn {
	case operators.Equals:
		f = func(x *evalCtx) bool { return cmp(x) == 0 }
	case operators.NotEquals:
		f = func(x *evalCtx) bool { return cmp(x) != 0 }
	case operators.Less:
		f = func(x *evalCtx) bool { return cmp(x) < 0 }
	case operators.LessEquals:
		f = func(x *evalCtx) bool { return cmp(x) <= 0 }
	case operators.Greater:
		f = func(x *evalCtx) bool { return cmp(x) > 0 }
	default:
		f = func(x *evalCtx) bool { return cmp(x) >= 0 }
	}
	return node{typ: 'b', b: f}, nil
}

// in is `field in ["a", "b"]`, over a list of literals.
func (c *condCompiler) in(e celast.Expr, a node, list celast.Expr) (node, error) {
	if list.Kind() != celast.ListKind || a.typ != 's' {
		return node{}, fmt.Errorf("%s: in takes a string field and a list of strings", c.at(e))
	}
	set := map[string]bool{}
	for _, el := range list.AsList().Elements() {
		s, ok := el.AsLiteral().(types.String)
		if el.Kind() != celast.LiteralKind || !ok {
			return node{}, fmt.Errorf("%s: in takes a list of string literals", c.at(el))
		}
		set[string(s)] = true
	}
	as := a.s
	return node{typ: 'b', b: func(x *evalCtx) bool { return set[as(x)] }}, nil
}
