package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	_, hash := NewSecret()
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"empty file", "", ""},
		{"everything", "addr: 0.0.0.0:7070\ndata: /var/lib/strata\nmax_body: 1024\ntls: {cert: c.pem, key: k.pem}\ndemo: true\ntokens:\n  - {name: a, sha256: " + hash + ", scopes: [read], streams: [orders-]}\n", ""},
		{"unknown key", "adr: x\n", "field adr not found"},
		{"negative body", "max_body: -1\n", "max_body"},
		{"cluster without postgres", "cluster: true\n", "give postgres"},
		{"too many partitions", "postgres: postgres://x\ncluster: true\npartitions: 5000\n", "partitions 5000"},
		{"lease too short", "postgres: postgres://x\ncluster: true\nlease_ttl: 1ms\n", "lease_ttl"},
		{"half TLS", "tls: {cert: c.pem}\n", "tls: give both"},
		{"token without name", "tokens: [{sha256: " + hash + ", scopes: [read]}]\n", "tokens[0].name is empty"},
		{"same name twice", "tokens: [{name: a, sha256: " + hash + ", scopes: [read]}, {name: a, sha256: " + hash + ", scopes: [read]}]\n", `tokens[1].name "a" is used twice`},
		{"bad hash", "tokens: [{name: a, sha256: abc, scopes: [read]}]\n", "tokens[0].sha256"},
		{"no scopes", "tokens: [{name: a, sha256: " + hash + "}]\n", "tokens[0].scopes is empty"},
		{"bad scope", "tokens: [{name: a, sha256: " + hash + ", scopes: [read, write]}]\n", `tokens[0].scopes[1] "write"`},
		{"empty prefix", "tokens: [{name: a, sha256: " + hash + ", scopes: [read], streams: [\"\"]}]\n", "tokens[0].streams[0] is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "strata.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrConfig) {
				t.Fatalf("%v, want ErrConfig mentioning %q", err, tc.err)
			}
		})
	}
}

func TestTokenGrants(t *testing.T) {
	tok := Token{Scopes: []Scope{ScopeAppend}, Streams: []string{"orders-", "txn-"}}
	if !tok.Has(ScopeAppend) || tok.Has(ScopeRead) || tok.Has(ScopeAdmin) {
		t.Fatal("append grants append only")
	}
	if admin := (Token{Scopes: []Scope{ScopeAdmin}}); !admin.Has(ScopeRead) || !admin.Has(ScopeAppend) || !admin.Allows("anything") {
		t.Fatal("admin grants every scope and stream")
	}
	for stream, want := range map[string]bool{"orders-1": true, "txn-u1": true, "order": false, "acct-1": false} {
		if tok.Allows(stream) != want {
			t.Errorf("Allows(%q) = %v", stream, !want)
		}
	}
	secret, hash := NewSecret()
	if Hash(secret) != hash || len(hash) != 64 || !strings.HasPrefix(secret, "strata_") {
		t.Fatalf("secret %q hash %q", secret, hash)
	}
}
