package event

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateNames(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr string // substring; "" means valid
	}{
		{"simple", "order-42", ""},
		{"unicode", "客户-7", ""},
		{"max length", strings.Repeat("a", MaxNameLen), ""},
		{"spaces and punctuation", "a b.c/d:e", ""},
		{"empty", "", "must not be empty"},
		{"too long", strings.Repeat("a", MaxNameLen+1), "at most 255"},
		{"too long multibyte", strings.Repeat("é", 128), "at most 255"},
		{"invalid utf-8", "ab\xffcd", "not valid UTF-8 at byte 2"},
		{"truncated rune", "a\xe2\x82", "not valid UTF-8"},
		{"nul", "a\x00b", "control character U+0000"},
		{"newline", "a\nb", "control character U+000A"},
		{"del", "a\x7fb", "control character U+007F"},
		{"c1 control", "a\u0085b", "control character U+0085"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, check := range []struct {
				field string
				fn    func(string) error
			}{{"stream", ValidateStream}, {"type", ValidateType}} {
				err := check.fn(tc.in)
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("%s %q: unexpected error %v", check.field, tc.in, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("%s %q: no error, want %q", check.field, tc.in, tc.wantErr)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s: error %v does not match ErrInvalid", check.field, err)
				}
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Field != check.field {
					t.Fatalf("error %v does not name field %q", err, check.field)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), check.field) {
					t.Fatalf("error %q lacks %q or the field name", err, tc.wantErr)
				}
			}
		})
	}
}

func TestEventValidateChecksType(t *testing.T) {
	e := Event{Type: ""}
	if err := e.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate of an empty type = %v", err)
	}
	e.Type = "ok"
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEventSize(t *testing.T) {
	e := Event{Type: "abc", Data: make([]byte, 10), Metadata: make([]byte, 5)}
	if got := e.Size(); got != 18 {
		t.Fatalf("Size = %d, want 18", got)
	}
}
