package projection

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/jsonscan"
)

// Spec is a declarative projection, for users who write no Go: the tables'
// DDL, and one SQL statement per event type whose parameters are bound from
// the event. In YAML:
//
//	name: account_balances
//	tables:
//	  - CREATE TABLE IF NOT EXISTS account_balances (account TEXT PRIMARY KEY, balance TEXT NOT NULL)
//	on:
//	  bank.deposited: |
//	    INSERT INTO account_balances (account, balance) VALUES (:stream_id, :data.amount)
//	    ON CONFLICT(account) DO UPDATE SET balance = dec_add(balance, excluded.balance)
//
// Parameters are :name tokens outside string literals:
//
//	:data.a.b      a field of the event's JSON data (nested with dots); JSON
//	               numbers are bound as their exact text, strings as text,
//	               true/false as 1/0, objects and arrays as JSON text, a
//	               missing field as NULL
//	:metadata.a.b  the same from the metadata
//	:stream :stream_id (the stream name after its first "-") :type
//	:position :version :time (RFC 3339, UTC) :event_id
//
// A spec can also declare side effects: webhooks, one URL per event type,
// POSTed a JSON object (projection, type, stream, position, version, time,
// id, data) after the event's batch commits. Like every side effect they
// are sent only by the serving version, never while a version replays
// history or catches up (see SideEffecter).
//
//	webhooks:
//	  order.shipped: https://shop.example/hooks/shipped
type Spec struct {
	Name     string            `yaml:"name"`
	Tables   []string          `yaml:"tables"`
	On       map[string]string `yaml:"on"`
	Webhooks map[string]string `yaml:"webhooks,omitempty" json:",omitempty"`
	// Postgres replaces the tables, and the statements of the event types
	// it names, when the read model lives in PostgreSQL: for what the two
	// databases spell differently, full-text search above all (an FTS4
	// table in SQLite, a tsvector column and a GIN index in PostgreSQL).
	// Everything else is written once: placeholders are numbered for both,
	// and PostgreSQL read models have the dec_add, dec_sub and dec_mul
	// functions too.
	//
	//	postgres:
	//	  tables:
	//	    - CREATE TABLE IF NOT EXISTS … search tsvector GENERATED ALWAYS AS (…) STORED …
	Postgres *SpecVariant `yaml:"postgres,omitempty" json:",omitempty"`
}

// SpecVariant is what a Spec spells differently for one database.
type SpecVariant struct {
	Tables []string          `yaml:"tables,omitempty" json:",omitempty"`
	On     map[string]string `yaml:"on,omitempty" json:",omitempty"`
}

// ParseSpec reads a YAML spec and compiles it into a Projection. Every
// problem is reported at once, naming the event type and parameter.
func ParseSpec(b []byte) (*Declarative, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("projection spec: %w", err)
	}
	return s.Compile()
}

// Declarative is a compiled Spec; it implements Projection.
type Declarative struct {
	spec   Spec
	tables []string // the DDL this variant runs
	stmts  map[string]*statement
	pg     *Declarative // the PostgreSQL variant, when the spec has one
}

type statement struct {
	sql      string   // with $1, $2, … placeholders, in order
	params   []param  // in placeholder order
	dataKeys []string // top-level data fields the parameters read
	metaKeys []string // top-level metadata fields the parameters read
}

type param struct {
	name string
	root string
	key  string   // the first field of a :data / :metadata path
	rest []string // the fields below it
	idx  int      // key's index in the statement's dataKeys or metaKeys
	// get binds the parameter for event r; it takes the param itself since
	// idx is set after the param is made (compileStatement).
	get func(p *param, r *event.Record, data, meta [][]byte) (any, error)
}

// Compile checks and compiles s.
func (s Spec) Compile() (*Declarative, error) {
	var errs []error
	if err := event.ValidateType(s.Name); err != nil || strings.ContainsAny(s.Name, " \"'") {
		errs = append(errs, fmt.Errorf("projection spec: name %q must be a plain identifier", s.Name))
	}
	if len(s.Tables) == 0 {
		errs = append(errs, fmt.Errorf("projection spec %q: no tables", s.Name))
	}
	if len(s.On) == 0 {
		errs = append(errs, fmt.Errorf("projection spec %q: no event handlers (on:)", s.Name))
	}
	d := &Declarative{spec: s, tables: s.Tables, stmts: map[string]*statement{}}
	errs = append(errs, d.compileOn(s.On, "")...)
	if v := s.Postgres; v != nil {
		d.pg = &Declarative{spec: s, tables: s.Tables, stmts: map[string]*statement{}}
		if len(v.Tables) > 0 {
			d.pg.tables = v.Tables
		}
		if len(v.Tables) == 0 && len(v.On) == 0 {
			errs = append(errs, fmt.Errorf("projection spec %q, postgres: neither tables nor on", s.Name))
		}
		for t := range v.On {
			if _, ok := s.On[t]; !ok {
				errs = append(errs, fmt.Errorf("projection spec %q, postgres.on %s: the spec has no statement for %s to replace", s.Name, t, t))
			}
		}
		merged := maps.Clone(s.On)
		maps.Copy(merged, v.On)
		errs = append(errs, d.pg.compileOn(merged, "postgres.")...)
	}
	for t, u := range s.Webhooks {
		if err := event.ValidateType(t); err != nil {
			errs = append(errs, fmt.Errorf("projection spec %q, webhooks: %w", s.Name, err))
		}
		if parsed, err := url.Parse(u); err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			errs = append(errs, fmt.Errorf("projection spec %q, webhook for %s: %q is not an http(s) URL", s.Name, t, u))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// compileOn compiles the statements of on into d, returning every error.
func (d *Declarative) compileOn(on map[string]string, prefix string) []error {
	var errs []error
	for _, t := range slices.Sorted(maps.Keys(on)) {
		st, err := compileStatement(on[t])
		if err != nil {
			errs = append(errs, fmt.Errorf("projection spec %q, %son %s: %w", d.spec.Name, prefix, t, err))
			continue
		}
		d.stmts[t] = st
	}
	return errs
}

// For implements Portable: the PostgreSQL variant for "postgres".
func (d *Declarative) For(database string) Projection {
	if database == DatabasePostgres && d.pg != nil {
		return d.pg
	}
	return d
}

// webhookTimeout bounds one webhook call: the runner waits for it before it
// announces the batch's position.
const webhookTimeout = 5 * time.Second

var webhookClient = &http.Client{Timeout: webhookTimeout}

// Effect implements SideEffecter: it calls the event type's webhook, if the
// spec has one. A reply other than 2xx is an error (the runner logs it).
func (d *Declarative) Effect(ctx context.Context, r event.Record) error {
	u, ok := d.spec.Webhooks[r.Type]
	if !ok {
		return nil
	}
	data := json.RawMessage(r.Data)
	if !json.Valid(data) {
		data = nil
	}
	body, err := json.Marshal(struct {
		Projection string          `json:"projection"`
		Type       string          `json:"type"`
		Stream     string          `json:"stream"`
		Position   uint64          `json:"position"`
		Version    uint64          `json:"version"`
		Time       time.Time       `json:"time"`
		ID         string          `json:"id"`
		Data       json.RawMessage `json:"data"`
	}{d.spec.Name, r.Type, r.Stream, r.Position, r.Version, r.Time.UTC(), r.ID.String(), data})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := webhookClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: %s", u, resp.Status)
	}
	return nil
}

// compileStatement replaces :params outside string literals and quoted
// identifiers with $1, $2, … and records how to bind each.
func compileStatement(src string) (*statement, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty statement")
	}
	var out strings.Builder
	st := &statement{}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(src) && src[j] != c {
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated %c quote", c)
			}
			out.WriteString(src[i : j+1])
			i = j + 1
		case c == ':' && i+1 < len(src) && isIdentStart(src[i+1]) && (i == 0 || src[i-1] != ':'):
			j := i + 1
			for j < len(src) && (isIdentPart(src[j]) || src[j] == '.' && j+1 < len(src) && isIdentStart(src[j+1])) {
				j++
			}
			p, err := newParam(src[i+1 : j])
			if err != nil {
				return nil, err
			}
			switch p.root {
			case "data":
				p.idx, st.dataKeys = keyIndex(st.dataKeys, p.key)
			case "metadata":
				p.idx, st.metaKeys = keyIndex(st.metaKeys, p.key)
			}
			st.params = append(st.params, p)
			fmt.Fprintf(&out, "$%d", len(st.params))
			i = j
		default:
			out.WriteByte(c)
			i++
		}
	}
	st.sql = out.String()
	return st, nil
}

// keyIndex returns k's index in keys, adding it when missing.
func keyIndex(keys []string, k string) (int, []string) {
	for i, have := range keys {
		if have == k {
			return i, keys
		}
	}
	return len(keys), append(keys, k)
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

func newParam(name string) (param, error) {
	root, path, _ := strings.Cut(name, ".")
	p := param{name: name, root: root}
	switch root {
	case "data", "metadata":
		if path == "" {
			return p, fmt.Errorf("parameter :%s names no field (use :%s.field)", name, root)
		}
		names := strings.Split(path, ".")
		p.key, p.rest = names[0], names[1:]
		isData := root == "data"
		p.get = func(p *param, _ *event.Record, data, meta [][]byte) (any, error) {
			vals := meta
			if isData {
				vals = data
			}
			v := vals[p.idx]
			if len(p.rest) > 0 && v != nil {
				m, err := jsonscan.Object(v)
				if err != nil {
					return nil, nil // not an object: the nested field is missing
				}
				v = lookup(m, p.rest)
			}
			return bindRaw(v)
		}
	case "stream", "stream_id", "type", "position", "version", "time", "event_id":
		if path != "" {
			return p, fmt.Errorf("parameter :%s: %s has no fields", name, root)
		}
		p.get = func(_ *param, r *event.Record, _, _ [][]byte) (any, error) {
			switch root {
			case "stream":
				return r.Stream, nil
			case "stream_id":
				_, id, _ := strings.Cut(r.Stream, "-")
				return id, nil
			case "type":
				return r.Type, nil
			case "position":
				return int64(r.Position), nil
			case "version":
				return int64(r.Version), nil
			case "time":
				return r.Time.UTC().Format(time.RFC3339Nano), nil
			default:
				return r.ID.String(), nil
			}
		}
	default:
		return p, fmt.Errorf("unknown parameter :%s (want :data.…, :metadata.…, :stream, :stream_id, :type, :position, :version, :time or :event_id)", name)
	}
	return p, nil
}

// lookup follows names through nested objects (decoded one level at a time,
// values raw); nil when a step is missing.
func lookup(m map[string]json.RawMessage, names []string) json.RawMessage {
	for i, n := range names {
		v, ok := m[n]
		if !ok {
			return nil
		}
		if i == len(names)-1 {
			return v
		}
		next, err := jsonscan.Object(v)
		if err != nil {
			return nil
		}
		m = next
	}
	return nil
}

// bindRaw turns a raw JSON value into an SQL argument, keeping numbers
// exact (as their text): strings as text, true/false as 1/0, null or
// missing as NULL, objects and arrays as their JSON text.
func bindRaw(v json.RawMessage) (any, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil, nil
	}
	switch v[0] {
	case '"':
		if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) { // plain: the text between the quotes
			return string(v[1 : len(v)-1]), nil
		}
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case 'n':
		return nil, nil
	case 't':
		return int64(1), nil
	case 'f':
		return int64(0), nil
	}
	return string(v), nil
}

// scanFieldsOf is jsonscan.Fields where empty data counts as no fields.
func scanFieldsOf(b []byte, keys []string, dst [][]byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		clear(dst)
		return nil
	}
	return jsonscan.Fields(b, keys, dst)
}

func grow(s [][]byte, n int) [][]byte {
	if cap(s) < n {
		return make([][]byte, n)
	}
	return s[:n]
}

// Name implements Projection.
func (d *Declarative) Name() string { return d.spec.Name }

// Definition implements Definer: the spec as canonical JSON (map keys
// sorted), so that reformatting the YAML does not start a rebuild but any
// change to a table or statement does.
func (d *Declarative) Definition() string {
	b, err := json.Marshal(d.spec)
	if err != nil { // a Spec is strings only
		panic(err)
	}
	return string(b)
}

// Spec returns the spec d was compiled from.
func (d *Declarative) Spec() Spec { return d.spec }

// EventTypes implements Selective: the types the spec has statements for.
func (d *Declarative) EventTypes() []string {
	types := make([]string, 0, len(d.spec.On))
	for t := range d.spec.On {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// Setup implements Projection: runs the tables' DDL.
func (d *Declarative) Setup(ctx context.Context, tx *sql.Tx) error {
	for _, ddl := range d.tables {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("projection %s: %w", d.spec.Name, err)
		}
	}
	return nil
}

// Apply implements Projection: one statement per event whose type has one.
func (d *Declarative) Apply(ctx context.Context, tx *sql.Tx, batch []event.Record) error {
	prepared := map[string]*sql.Stmt{}
	defer func() {
		for _, s := range prepared {
			s.Close()
		}
	}()
	var b binder
	for i := range batch {
		r := &batch[i]
		st, args, err := b.bind(d, r)
		if err != nil || st == nil {
			if err != nil {
				return err
			}
			continue
		}
		ps, ok := prepared[r.Type]
		if !ok {
			if ps, err = tx.PrepareContext(ctx, st.sql); err != nil {
				return fmt.Errorf("projection %s, on %s: %w", d.spec.Name, r.Type, err)
			}
			prepared[r.Type] = ps
		}
		if _, err := ps.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("projection %s: event %d (%s): %w", d.spec.Name, r.Position, r.Type, err)
		}
	}
	return nil
}

// QueueBatch implements PostgresBatcher: the statements of the batch's
// events, in order, for one round trip.
func (d *Declarative) QueueBatch(b *pgx.Batch, batch []event.Record) error {
	var bd binder
	for i := range batch {
		r := &batch[i]
		st, args, err := bd.bind(d, r)
		if err != nil {
			return err
		}
		if st != nil {
			b.Queue(st.sql, slices.Clone(args)...)
		}
	}
	return nil
}

// binder binds statements' parameters, reusing its buffers between events.
type binder struct {
	args       []any
	data, meta [][]byte
}

// bind returns the statement for r and its arguments (nil when r's type
// has none); the arguments are valid until the next call.
func (b *binder) bind(d *Declarative, r *event.Record) (*statement, []any, error) {
	st, ok := d.stmts[r.Type]
	if !ok {
		return nil, nil, nil
	}
	b.data, b.meta = grow(b.data, len(st.dataKeys)), grow(b.meta, len(st.metaKeys))
	if len(st.dataKeys) > 0 {
		if err := scanFieldsOf(r.Data, st.dataKeys, b.data); err != nil {
			return nil, nil, fmt.Errorf("projection %s: event %d (%s) data: %w", d.spec.Name, r.Position, r.Type, err)
		}
	}
	if len(st.metaKeys) > 0 {
		if err := scanFieldsOf(r.Metadata, st.metaKeys, b.meta); err != nil {
			return nil, nil, fmt.Errorf("projection %s: event %d (%s) metadata: %w", d.spec.Name, r.Position, r.Type, err)
		}
	}
	b.args = b.args[:0]
	for j := range st.params {
		p := &st.params[j]
		v, err := p.get(p, r, b.data, b.meta)
		if err != nil {
			return nil, nil, fmt.Errorf("projection %s: event %d, parameter :%s: %w", d.spec.Name, r.Position, p.name, err)
		}
		b.args = append(b.args, v)
	}
	return st, b.args, nil
}
