package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	gojson "github.com/goccy/go-json"
)

// Sentinel errors of the registry; errors name the type and version.
var (
	// ErrUnknownType: no Go type is registered under an event's type name,
	// or a value's Go type is not registered.
	ErrUnknownType = errors.New("event: unknown type")
	// ErrUpcast: an event's schema version cannot be brought to the current
	// one: a step of the chain is missing, it failed, or the version is newer
	// than the code knows.
	ErrUpcast = errors.New("event: cannot upcast")
	// ErrRegistration: a registration is inconsistent (a name or Go type
	// registered twice, a gap in an upcaster chain, ...).
	ErrRegistration = errors.New("event: bad registration")
)

// Upcaster turns the JSON data of one schema version of a type into the
// next version's. Old events are never rewritten: upcasters run on read.
type Upcaster func(data []byte) ([]byte, error)

// Registry maps explicit event type names to Go types and brings old schema
// versions up to date. Names are chosen by the caller, never derived from Go
// type names, so renaming a struct never orphans stored events. A Registry
// is safe for concurrent use; register at start-up.
type Registry struct {
	mu    sync.Mutex // serialises registrations
	types atomic.Pointer[typeMaps]
}

// typeMaps is never changed once published: a registration publishes a new
// copy, so that reads (one per event decoded, on every core at once during a
// replay) take no lock and share no written cache line.
type typeMaps struct {
	byName map[string]*registeredType
	byGo   map[reflect.Type]*registeredType
}

func (r *Registry) maps() *typeMaps {
	if m := r.types.Load(); m != nil {
		return m
	}
	return &typeMaps{}
}

type registeredType struct {
	name    string
	goType  reflect.Type
	current uint32              // schema version of the Go type
	steps   map[uint32]Upcaster // steps[v] turns v into v+1
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// TypeOption configures a registration.
type TypeOption func(*registeredType)

// Version declares the schema version the Go type represents (default 1).
func Version(v uint32) TypeOption { return func(t *registeredType) { t.current = v } }

// Upcast adds the step that turns version from into from+1.
func Upcast(from uint32, fn Upcaster) TypeOption {
	return func(t *registeredType) {
		if t.steps == nil {
			t.steps = map[uint32]Upcaster{}
		}
		t.steps[from] = fn
	}
}

// Register registers T under name. With Version(n), T is schema version n
// and the chain Upcast(1, ...) … Upcast(n-1, ...) must be complete: a
// missing step is reported here, not when the first old event is read.
func Register[T any](r *Registry, name string, opts ...TypeOption) error {
	goType := reflect.TypeFor[T]()
	if goType.Kind() == reflect.Pointer || goType.Kind() == reflect.Interface {
		return fmt.Errorf("%w: %q: register the value type, not %s", ErrRegistration, name, goType)
	}
	if err := ValidateType(name); err != nil {
		return fmt.Errorf("%w: %w", ErrRegistration, err)
	}
	t := &registeredType{name: name, goType: goType, current: 1}
	for _, o := range opts {
		o(t)
	}
	if t.current == 0 {
		return fmt.Errorf("%w: %q: versions start at 1", ErrRegistration, name)
	}
	var missing, extra []string
	for v := uint32(1); v < t.current; v++ {
		if fn := t.steps[v]; fn == nil {
			missing = append(missing, fmt.Sprintf("%d→%d", v, v+1))
		}
	}
	for v := range t.steps {
		if v == 0 || v >= t.current {
			extra = append(extra, fmt.Sprintf("%d→%d", v, v+1))
		}
	}
	sort.Strings(extra)
	if len(missing) > 0 {
		return fmt.Errorf("%w: %q is version %d but has no upcaster for %s", ErrRegistration, name, t.current, strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		return fmt.Errorf("%w: %q is version %d but has upcasters for %s", ErrRegistration, name, t.current, strings.Join(extra, ", "))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.maps()
	if old, ok := m.byName[name]; ok {
		return fmt.Errorf("%w: %q is already registered (as %s)", ErrRegistration, name, old.goType)
	}
	if old, ok := m.byGo[goType]; ok {
		return fmt.Errorf("%w: %s is already registered (as %q)", ErrRegistration, goType, old.name)
	}
	next := &typeMaps{byName: maps.Clone(m.byName), byGo: maps.Clone(m.byGo)}
	if next.byName == nil {
		next.byName, next.byGo = map[string]*registeredType{}, map[reflect.Type]*registeredType{}
	}
	next.byName[name], next.byGo[goType] = t, t
	r.types.Store(next)
	return nil
}

// MustRegister is Register that panics: for package-level registration of
// types whose registration is known to be right.
func MustRegister[T any](r *Registry, name string, opts ...TypeOption) {
	if err := Register[T](r, name, opts...); err != nil {
		panic(err)
	}
}

// Encode turns a registered value into an Event (JSON data, the registered
// name, the current schema version). The event's ID is left zero: the store
// assigns one unless the caller sets it.
func (r *Registry) Encode(v any) (Event, error) {
	goType := reflect.TypeOf(v)
	t, ok := r.maps().byGo[goType]
	if !ok {
		return Event{}, fmt.Errorf("%w: Go type %v is not registered", ErrUnknownType, goType)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("event: encode %q: %w", t.name, err)
	}
	return Event{Type: t.name, Schema: t.current, Data: data}, nil
}

// Decode turns a stored event into its registered Go value, upcasting its
// data from the event's schema version (0 counts as 1) to the current one.
func (r *Registry) Decode(e *Event) (any, error) {
	t, ok := r.maps().byName[e.Type]
	if !ok {
		return nil, fmt.Errorf("%w: %q (schema %d)", ErrUnknownType, e.Type, e.Schema)
	}
	data, err := t.upcast(e.Data, max(e.Schema, 1))
	if err != nil {
		return nil, err
	}
	p := reflect.New(t.goType)
	// goccy/go-json decodes as encoding/json does (Unmarshaler methods,
	// tags, unknown fields ignored) about four times faster, and decoding is
	// most of what a replay costs.
	if err := gojson.Unmarshal(data, p.Interface()); err != nil {
		return nil, fmt.Errorf("event: decode %q version %d: %w", t.name, t.current, err)
	}
	return p.Elem().Interface(), nil
}

// Upcast returns e's data brought to the current schema version of its type,
// and that version: for readers that want JSON, not Go values.
func (r *Registry) Upcast(e *Event) ([]byte, uint32, error) {
	t, ok := r.maps().byName[e.Type]
	if !ok {
		return nil, 0, fmt.Errorf("%w: %q (schema %d)", ErrUnknownType, e.Type, e.Schema)
	}
	data, err := t.upcast(e.Data, max(e.Schema, 1))
	return data, t.current, err
}

func (t *registeredType) upcast(data []byte, from uint32) ([]byte, error) {
	if from > t.current {
		return nil, fmt.Errorf("%w: %q version %d is newer than this code's version %d", ErrUpcast, t.name, from, t.current)
	}
	for v := from; v < t.current; v++ {
		out, err := t.steps[v](data)
		if err != nil {
			return nil, fmt.Errorf("%w: %q version %d to %d: %w", ErrUpcast, t.name, v, v+1, err)
		}
		data = out
	}
	return data, nil
}

// Name returns the name v's Go type is registered under.
func (r *Registry) Name(v any) (string, bool) {
	t, ok := r.maps().byGo[reflect.TypeOf(v)]
	if !ok {
		return "", false
	}
	return t.name, true
}

// Fingerprint summarises the registered types and their versions: it
// changes when a type is added or its schema version changes, which is what
// snapshots must notice.
func (r *Registry) Fingerprint() string {
	m := r.maps()
	names := make([]string, 0, len(m.byName))
	for n, t := range m.byName {
		names = append(names, fmt.Sprintf("%s@%d", n, t.current))
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}
