package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestIDTextRoundTrip(t *testing.T) {
	for range 1000 {
		id := NewID()
		if id.IsZero() {
			t.Fatal("NewID returned the zero ID")
		}
		s := id.String()
		if len(s) != 36 || s[14] != '7' {
			t.Fatalf("%s is not a version 7 UUID", s)
		}
		if v := id[8] >> 6; v != 0b10 {
			t.Fatalf("%s has variant bits %b", s, v)
		}
		back, err := ParseID(s)
		if err != nil || back != id {
			t.Fatalf("ParseID(%s) = %v, %v", s, back, err)
		}
		upper, err := ParseID(strings.ToUpper(strings.ReplaceAll(s, "-", "")))
		if err != nil || upper != id {
			t.Fatalf("ParseID of the 32-digit upper-case form = %v, %v", upper, err)
		}
	}
}

func TestNewIDIsMonotonicWithinProcess(t *testing.T) {
	prev := NewID()
	for range 100_000 {
		id := NewID()
		if bytes.Compare(id[:8], prev[:8]) <= 0 {
			t.Fatalf("%s does not sort after %s", id, prev)
		}
		prev = id
	}
}

func TestNewIDsFillsIncreasingIDs(t *testing.T) {
	ids := make([]ID, 10_000)
	NewIDs(ids)
	for i := 1; i < len(ids); i++ {
		if bytes.Compare(ids[i][:8], ids[i-1][:8]) <= 0 || ids[i][6]>>4 != 7 {
			t.Fatalf("id %d (%s) does not follow %s as a v7 id", i, ids[i], ids[i-1])
		}
	}
	NewIDs(nil) // no ids, no panic
}

func TestParseIDRejects(t *testing.T) {
	for _, s := range []string{"", "xyz", "0190b2a4-7c1e-7000-8000-00000000000g", "0190b2a47c1e-7000-8000-0000-000000000000", strings.Repeat("0", 35)} {
		if _, err := ParseID(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q) = %v, want ErrInvalidID", s, err)
		}
	}
}

func TestIDJSON(t *testing.T) {
	id := NewID()
	b, err := json.Marshal(struct{ ID ID }{id})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ ID ID }
	if err := json.Unmarshal(b, &back); err != nil || back.ID != id {
		t.Fatalf("JSON round trip: %s → %v, %v", b, back.ID, err)
	}
	if err := json.Unmarshal([]byte(`{"ID":"nope"}`), &back); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("bad id in JSON = %v", err)
	}
}

func BenchmarkNewID(b *testing.B) {
	for range b.N {
		NewID()
	}
}
