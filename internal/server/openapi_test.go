package server

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/openapi.json from the code")

// The OpenAPI document checked in at docs/openapi.json is the one the code
// generates: go test ./internal/server -update rewrites it.
func TestOpenAPIDocumentIsCheckedIn(t *testing.T) {
	got, err := New(Options{}).OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	const path = "../../docs/openapi.json"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what the code generates: run go test ./internal/server -run OpenAPI -update", path)
	}
	if !bytes.Contains(got, []byte(`"openapi": "3.1.0"`)) {
		t.Fatal("not an OpenAPI 3.1 document")
	}
}
