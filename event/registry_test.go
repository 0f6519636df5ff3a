package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type orderCreatedV3 struct {
	OrderID  string `json:"order_id"`
	Tax      string `json:"tax_amount"`
	Shipping string `json:"shipping_cost"`
}

// addField returns an upcaster that adds a JSON field with a default value.
func addField(name, value string) Upcaster {
	return func(data []byte) ([]byte, error) {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		m[name] = value
		return json.Marshal(m)
	}
}

func orderRegistry(t *testing.T) *Registry {
	t.Helper()
	r := NewRegistry()
	err := Register[orderCreatedV3](r, "order.created", Version(3),
		Upcast(1, addField("tax_amount", "0")),
		Upcast(2, addField("shipping_cost", "0")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestUpcastChainBringsEveryVersionToTheCurrent(t *testing.T) {
	r := orderRegistry(t)
	cases := []struct {
		schema uint32
		data   string
		want   orderCreatedV3
	}{
		{0, `{"order_id":"o-1"}`, orderCreatedV3{"o-1", "0", "0"}},
		{1, `{"order_id":"o-1"}`, orderCreatedV3{"o-1", "0", "0"}},
		{2, `{"order_id":"o-2","tax_amount":"1.90"}`, orderCreatedV3{"o-2", "1.90", "0"}},
		{3, `{"order_id":"o-3","tax_amount":"1.90","shipping_cost":"4.95"}`, orderCreatedV3{"o-3", "1.90", "4.95"}},
	}
	for _, tc := range cases {
		v, err := r.Decode(&Event{Type: "order.created", Schema: tc.schema, Data: []byte(tc.data)})
		if err != nil {
			t.Fatalf("v%d: %v", tc.schema, err)
		}
		if got, ok := v.(orderCreatedV3); !ok || got != tc.want {
			t.Fatalf("v%d decoded to %#v, want %#v", tc.schema, v, tc.want)
		}
	}
	data, version, err := r.Upcast(&Event{Type: "order.created", Schema: 1, Data: []byte(`{"order_id":"o-9"}`)})
	if err != nil || version != 3 || !strings.Contains(string(data), `"shipping_cost":"0"`) {
		t.Fatalf("Upcast = %s, %d, %v", data, version, err)
	}
}

func TestEncodeUsesTheRegisteredNameAndVersion(t *testing.T) {
	r := orderRegistry(t)
	e, err := r.Encode(orderCreatedV3{OrderID: "o-1", Tax: "2", Shipping: "3"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != "order.created" || e.Schema != 3 {
		t.Fatalf("encoded as %q v%d", e.Type, e.Schema)
	}
	back, err := r.Decode(&e)
	if err != nil || back != (orderCreatedV3{"o-1", "2", "3"}) {
		t.Fatalf("round trip = %#v, %v", back, err)
	}
	if name, ok := r.Name(orderCreatedV3{}); !ok || name != "order.created" {
		t.Fatalf("Name = %q, %v", name, ok)
	}
}

func TestRegistrationErrorsAreFoundAtRegistration(t *testing.T) {
	type a struct{}
	type b struct{}
	id := func(d []byte) ([]byte, error) { return d, nil }
	cases := []struct {
		name    string
		setup   func(r *Registry) error
		wantErr string
	}{
		{"missing step", func(r *Registry) error {
			return Register[a](r, "order.created", Version(3), Upcast(1, id))
		}, `"order.created" is version 3 but has no upcaster for 2→3`},
		{"no steps", func(r *Registry) error { return Register[a](r, "x", Version(3)) }, "no upcaster for 1→2, 2→3"},
		{"step past the current version", func(r *Registry) error {
			return Register[a](r, "x", Version(2), Upcast(1, id), Upcast(2, id))
		}, "has upcasters for 2→3"},
		{"version zero", func(r *Registry) error { return Register[a](r, "x", Version(0)) }, "versions start at 1"},
		{"name twice", func(r *Registry) error {
			Register[a](r, "x")
			return Register[b](r, "x")
		}, `"x" is already registered`},
		{"type twice", func(r *Registry) error {
			Register[a](r, "x")
			return Register[a](r, "y")
		}, `is already registered (as "x")`},
		{"pointer type", func(r *Registry) error { return Register[*a](r, "x") }, "register the value type"},
		{"bad name", func(r *Registry) error { return Register[a](r, "") }, "invalid type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.setup(NewRegistry())
			if !errors.Is(err, ErrRegistration) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want ErrRegistration containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDecodeErrorsNameTypeAndVersion(t *testing.T) {
	r := orderRegistry(t)
	broken := NewRegistry()
	MustRegister[orderCreatedV3](broken, "order.created", Version(2),
		Upcast(1, func([]byte) ([]byte, error) { return nil, errors.New("boom") }))
	cases := []struct {
		name    string
		reg     *Registry
		e       Event
		want    error
		wantMsg string
	}{
		{"unknown type", r, Event{Type: "order.exploded", Schema: 2}, ErrUnknownType, `"order.exploded" (schema 2)`},
		{"newer than the code", r, Event{Type: "order.created", Schema: 4, Data: []byte(`{}`)}, ErrUpcast, "version 4 is newer than this code's version 3"},
		{"failing step", broken, Event{Type: "order.created", Schema: 1, Data: []byte(`{}`)}, ErrUpcast, `"order.created" version 1 to 2: boom`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.reg.Decode(&tc.e)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Decode = %v, want %v containing %q", err, tc.want, tc.wantMsg)
			}
		})
	}
	if _, err := r.Encode(struct{ X int }{}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("Encode of an unregistered type = %v", err)
	}
}

func TestFingerprintChangesWithVersions(t *testing.T) {
	type a struct{}
	r1, r2 := NewRegistry(), NewRegistry()
	MustRegister[a](r1, "x")
	MustRegister[a](r2, "x", Version(2), Upcast(1, func(d []byte) ([]byte, error) { return d, nil }))
	if r1.Fingerprint() == r2.Fingerprint() || r1.Fingerprint() != "x@1" {
		t.Fatalf("fingerprints %q and %q", r1.Fingerprint(), r2.Fingerprint())
	}
}
