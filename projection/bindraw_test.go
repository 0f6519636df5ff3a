package projection

import (
	"bytes"
	"encoding/json"
	"testing"

	"pgregory.net/rapid"
)

func TestBindRawStringsMatchEncodingJSON(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s := rapid.String().Draw(rt, "s")
		raw, _ := json.Marshal(s)
		if rapid.Bool().Draw(rt, "unescaped") && json.Valid(raw) {
			raw = bytes.ReplaceAll(raw, []byte(`\u003c`), []byte("<"))
		}
		var want string
		json.Unmarshal(raw, &want)
		got, err := bindRaw(raw)
		if err != nil || got != want {
			rt.Fatalf("bindRaw(%s) = %q, %v; want %q", raw, got, err, want)
		}
	})
}
