package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/client"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/store"
)

// Tokens with scopes and stream prefixes, from a configuration file: a
// request without the scope or outside the prefixes is refused with the
// catalog's code and writes nothing.
func TestE2ETokens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	secrets := map[string]string{}
	var cfg strings.Builder
	cfg.WriteString("tokens:\n")
	for _, tok := range []struct{ name, scopes, streams string }{
		{"reader", "[read]", "[]"},
		{"ingest", "[append]", `["orders-", "txn-"]`},
		{"ops", "[admin]", "[]"},
	} {
		secret, hash := config.NewSecret()
		secrets[tok.name] = secret
		fmt.Fprintf(&cfg, "  - name: %s\n    sha256: %s\n    scopes: %s\n    streams: %s\n", tok.name, hash, tok.scopes, tok.streams)
	}
	path := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, filepath.Join(dir, "data"), "127.0.0.1:0", "--config", path)
	as := func(name string) *client.Client {
		c, err := client.New(s.url, client.Options{Token: secrets[name]})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := as("ingest").Append(ctx, "orders-1", store.Any, event.Event{Type: "created"}); err != nil {
		t.Fatalf("ingest appends to orders-: %v", err)
	}
	if _, err := as("ops").Append(ctx, "acct-1", store.Any, event.Event{Type: "opened"}); err != nil {
		t.Fatalf("admin appends anywhere: %v", err)
	}
	head, err := as("reader").Head(ctx)
	if err != nil || head != 2 {
		t.Fatalf("reader: head %d, %v", head, err)
	}
	code := func(err error) api.Code {
		var e *api.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return api.Code(fmt.Sprint(err))
	}
	for _, tc := range []struct {
		name string
		do   func() error
		want api.Code
	}{
		{"no token", func() error { _, err := as("").Append(ctx, "orders-2", store.Any, event.Event{Type: "x"}); return err }, api.CodeUnauthorized},
		{"unknown token", func() error {
			c, _ := client.New(s.url, client.Options{Token: "strata_nope"})
			_, err := c.Head(ctx)
			return err
		}, api.CodeUnauthorized},
		{"read scope appends", func() error {
			_, err := as("reader").Append(ctx, "orders-2", store.Any, event.Event{Type: "x"})
			return err
		}, api.CodeForbidden},
		{"append outside its prefixes", func() error {
			_, err := as("ingest").Append(ctx, "acct-2", store.Any, event.Event{Type: "x"})
			return err
		}, api.CodeForbidden},
		{"append scope reads", func() error { _, err := as("ingest").Head(ctx); return err }, api.CodeForbidden},
		{"read scope changes rules", func() error {
			req, _ := http.NewRequest(http.MethodDelete, s.url+"/v1/rules/velocity", nil)
			req.Header.Set("Authorization", "Bearer "+secrets["reader"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return &api.Error{Code: map[int]api.Code{403: api.CodeForbidden}[resp.StatusCode]}
		}, api.CodeForbidden},
	} {
		if got := code(tc.do()); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if h, _ := as("reader").Head(ctx); h != head {
		t.Fatalf("head %d after refused requests, was %d", h, head)
	}
	if rs, err := as("reader").Rules(ctx); err != nil || len(rs) != 2 {
		t.Fatalf("the rules after a refused removal: %d, %v", len(rs), err)
	}
	// /metrics needs read; health does not.
	for path, want := range map[string]int{"/metrics": 401, "/healthz": 200} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s without a token: %d, want %d", path, resp.StatusCode, want)
		}
	}
	s.stop(t)
}

// Without tokens, only loopback clients are served: a client reaching the
// server through another of the machine's addresses is refused.
func TestE2ENoTokensLoopbackOnly(t *testing.T) {
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("this machine has no non-loopback IPv4 address to connect through")
	}
	s := start(t, t.TempDir(), "0.0.0.0:0")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.url, "http://"))
	for host, want := range map[string]int{"127.0.0.1": 200, ip.String(): 403} {
		resp, err := http.Get("http://" + net.JoinHostPort(host, port) + "/v1/head")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("from %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	s.stop(t) // all of stderr is in
	if !strings.Contains(s.stderr.String(), "NO API TOKENS ARE CONFIGURED") {
		t.Errorf("no loud log line about the missing tokens: %s", s.stderr)
	}
}

// With a certificate, it serves HTTPS.
func TestE2ETLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strata test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	s := start(t, filepath.Join(dir, "data"), "127.0.0.1:0", "--tls-cert", certPath, "--tls-key", keyPath)
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("serving %s, want https", s.url)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c, err := client.New(s.url, client.Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(context.Background(), "a-1", store.Any, event.Event{Type: "x"}); err != nil {
		t.Fatal(err)
	}
	s.stop(t)
}
