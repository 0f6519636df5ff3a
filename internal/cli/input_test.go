package cli

import (
	"strings"
	"testing"

	"github.com/stratadb/strata/event"
)

func TestParseEventsForms(t *testing.T) {
	const id = "01890a5d-ac96-774b-bcce-b302099a8057"
	tests := []struct {
		name  string
		input string
		want  []event.Event
	}{
		{
			name:  "array",
			input: `[{"type":"a","data":{"x":1}}, {"type":"b","data":[1, 2]}]`,
			want:  []event.Event{{Type: "a", Data: []byte(`{"x":1}`)}, {Type: "b", Data: []byte(`[1, 2]`)}},
		},
		{
			name:  "json lines with blank lines and CRLF",
			input: "{\"type\":\"a\",\"data\":1}\r\n\n{\"type\":\"b\",\"data\":\"s\"}\n",
			want:  []event.Event{{Type: "a", Data: []byte(`1`)}, {Type: "b", Data: []byte(`"s"`)}},
		},
		{
			name:  "objects spanning lines",
			input: "{\n  \"type\": \"a\",\n  \"data\": {\"k\": true}\n}\n{\"type\":\"b\"}",
			want:  []event.Event{{Type: "a", Data: []byte(`{"k": true}`)}, {Type: "b"}},
		},
		{
			name:  "all fields",
			input: `{"id":"` + id + `","type":"a","schema":3,"data":null,"metadata":{"corr":"c1"}}`,
			want: []event.Event{{
				ID: must(event.ParseID(id)), Type: "a", Schema: 3,
				Data: []byte(`null`), Metadata: []byte(`{"corr":"c1"}`),
			}},
		},
		{
			name: "read output is accepted, base64 decoded",
			input: `{"position":7,"stream":"s","version":2,"id":"` + id + `","type":"a","schema":1,` +
				`"time":"2025-01-02T03:04:05Z","data":"AAEC","data_encoding":"base64"}`,
			want: []event.Event{{ID: must(event.ParseID(id)), Type: "a", Schema: 1, Data: []byte{0, 1, 2}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEvents(strings.NewReader(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.ID != w.ID || g.Type != w.Type || g.Schema != w.Schema ||
					string(g.Data) != string(w.Data) || string(g.Metadata) != string(w.Metadata) {
					t.Errorf("event %d = %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

func TestParseEventsErrors(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"empty", "  \n", "no events"},
		{"empty array", "[ ]", "no events"},
		{"not json", "type=a", "line 1: want a JSON array"},
		{"bad json on line 3", "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\": x}\n", "line 3, column 10: invalid JSON"},
		{"bad json in array", "[\n{\"type\":\"a\"},\n{\"type\":\"b\" \"data\":1}\n]", "line 3, column 13: invalid JSON"},
		{"missing comma in array", "[{\"type\":\"a\"}\n {\"type\":\"b\"}]", "line 2, column 2: invalid JSON"},
		{"unterminated object", "{\"type\":\"a\"}\n{\"type\":\n", "input ends inside the value starting at line 2"},
		{"unterminated array", "[{\"type\":\"a\"}", "input ends inside the value starting at line 1"},
		{"missing type on line 2", "{\"type\":\"a\"}\n{\"data\":1}", `line 2: missing "type"`},
		{"missing type in array", "[{\"type\":\"a\"},\n {\"data\":1}]", `event at index 1 (line 2): missing "type"`},
		{"empty type", `{"type":""}`, "line 1: event: invalid type"},
		{"bad id", "{\"type\":\"a\"}\n\n{\"type\":\"a\",\"id\":\"nope\"}", `line 3: "id": event: invalid id: "nope"`},
		{"unknown field", `{"type":"a","meta":{}}`, `line 1: json: unknown field "meta"`},
		{"not an object", "{\"type\":\"a\"}\n42", "line 2: an event must be a JSON object"},
		{"array element not object", `["a"]`, "event at index 0 (line 1): an event must be a JSON object"},
		{"negative schema", `{"type":"a","schema":-1}`, `line 1: "schema" -1: want a whole number`},
		{"bad base64", `{"type":"a","data":"!!","data_encoding":"base64"}`, `line 1: "data": illegal base64`},
		{"base64 not a string", `{"type":"a","data":1,"data_encoding":"base64"}`, `must be a string`},
		{"unknown encoding", `{"type":"a","data":"x","data_encoding":"hex"}`, `data_encoding "hex"`},
		{"data after array", "[{\"type\":\"a\"}]\n{\"type\":\"b\"}", "line 2: unexpected data after the array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEvents(strings.NewReader(tt.input))
			if err == nil {
				t.Fatalf("parsed %d events, want error containing %q", len(got), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
