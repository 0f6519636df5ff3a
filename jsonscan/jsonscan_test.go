package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"pgregory.net/rapid"
)

// Object must agree with encoding/json: the same members with the same raw
// values for what it accepts, and an error for what it rejects.
func checkObject(t interface{ Fatalf(string, ...any) }, b []byte) {
	var want map[string]json.RawMessage
	wantErr := json.Unmarshal(b, &want)
	if wantErr == nil && want == nil { // the JSON literal null
		wantErr = ErrNotObject
	}
	got, err := Object(b)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: Object error %v, encoding/json error %v", b, err, wantErr)
	}
	if err != nil {
		if !errors.Is(err, ErrNotObject) && !errors.Is(err, ErrSyntax) {
			t.Fatalf("%q: Object error %v, neither ErrNotObject nor ErrSyntax", b, err)
		}
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d members, encoding/json %d", b, len(got), len(want))
	}
	for k, v := range want {
		var a, c bytes.Buffer
		json.Compact(&a, v)
		json.Compact(&c, got[k])
		if a.String() != c.String() {
			t.Fatalf("%q: member %q = %s, encoding/json %s", b, k, got[k], v)
		}
	}
}

func TestObjectMatchesEncodingJSON(t *testing.T) {
	value := rapid.Deferred(func() *rapid.Generator[any] { return jsonValue(3) })
	rapid.Check(t, func(rt *rapid.T) {
		obj := map[string]any{}
		for range rapid.IntRange(0, 6).Draw(rt, "members") {
			obj[rapid.StringN(0, 8, -1).Draw(rt, "key")] = value.Draw(rt, "value")
		}
		b, _ := json.Marshal(obj)
		if rapid.Bool().Draw(rt, "indent") {
			var out bytes.Buffer
			json.Indent(&out, b, " ", "\t")
			b = out.Bytes()
		}
		checkObject(rt, b)
	})
}

func jsonValue(depth int) *rapid.Generator[any] {
	leaf := rapid.OneOf(
		rapid.Map(rapid.String(), func(s string) any { return s }),
		rapid.Map(rapid.Float64(), func(f float64) any { return f }),
		rapid.Map(rapid.Int64(), func(n int64) any { return n }),
		rapid.Map(rapid.Bool(), func(v bool) any { return v }),
		rapid.Just[any](nil),
	)
	if depth == 0 {
		return leaf
	}
	return rapid.OneOf(leaf,
		rapid.Map(rapid.SliceOfN(jsonValue(depth-1), 0, 3), func(s []any) any { return s }),
		rapid.Map(rapid.MapOfN(rapid.StringN(0, 5, -1), jsonValue(depth-1), 0, 3), func(m map[string]any) any { return m }),
	)
}

func FuzzObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, ` {"a" : "x\"y", "b":[1,{"c":null}], "d":true} `, `{"a":1,}`, `{"a"}`, `[1]`, `null`, `{"a":"\u00e9"}`, `{"a":01}`, `{"a":"x"} x`, `{"\u0061":2,"a":3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkObject(t, b) })
}

func TestFieldsMatchesObject(t *testing.T) {
	value := rapid.Deferred(func() *rapid.Generator[any] { return jsonValue(2) })
	rapid.Check(t, func(rt *rapid.T) {
		keyGen := rapid.SampledFrom([]string{"a", "b", "amount", "é", ""})
		obj := map[string]any{}
		for range rapid.IntRange(0, 5).Draw(rt, "members") {
			obj[keyGen.Draw(rt, "key")] = value.Draw(rt, "value")
		}
		b, _ := json.Marshal(obj)
		keys := rapid.SliceOfNDistinct(keyGen, 0, 4, func(s string) string { return s }).Draw(rt, "keys")
		all, err := Object(b)
		if err != nil {
			rt.Fatal(err)
		}
		got := make([][]byte, len(keys))
		if err := Fields(b, keys, got); err != nil {
			rt.Fatal(err)
		}
		for i, k := range keys {
			if !bytes.Equal(got[i], all[k]) {
				rt.Fatalf("%s: field %q = %s, Object says %s", b, k, got[i], all[k])
			}
		}
	})
}

func TestMembersInOrderWithDuplicates(t *testing.T) {
	var got []string
	err := Members([]byte(`{"b":1, "a" : [2], "\u0062":"x"}`), func(key string, val []byte) {
		got = append(got, key+"="+string(val))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"b=1", "a=[2]", `b="x"`}
	if len(got) != len(want) {
		t.Fatalf("members %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("members %q, want %q", got, want)
		}
	}
}

func TestFieldsDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without the race detector, which adds its own")
	}
	data := []byte(`{"customer":"c-1","amount":"12.50","items":[{"sku":"a","qty":2}],"tax_amount":"1.25","note":"caf\u00e9"}`)
	keys := []string{"customer", "amount", "tax_amount", "shipping_cost"}
	var dst [4][]byte
	if n := testing.AllocsPerRun(100, func() {
		if err := Fields(data, keys, dst[:]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Fields allocates %v times per call, want 0", n)
	}
	if string(dst[0]) != `"c-1"` || string(dst[1]) != `"12.50"` || string(dst[2]) != `"1.25"` || dst[3] != nil {
		t.Fatalf("Fields = %q", dst)
	}
}
