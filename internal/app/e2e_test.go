package app_test

// End-to-end: the real strata binary, started on a random port, driven over
// HTTP with the Go client and raw requests.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/client"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-race", "-o", binary, "github.com/stratadb/strata/cmd/strata")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build strata:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running strata serve.
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	exited chan error
}

// syncBuffer is the server's stderr, written by exec's copier while a
// failing test may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs strata serve on dir at addr (127.0.0.1:0: a free port) and
// waits for it to say where it listens.
func start(t *testing.T, dir, addr string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--data", dir, "--addr", addr}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("strata serve said nothing: %v; stderr: %s", err, s.stderr)
	}
	go func() { s.exited <- cmd.Wait() }()
	// "strata: serving http://127.0.0.1:PORT (data DIR)"
	f := strings.Fields(line)
	if len(f) < 3 || !strings.HasPrefix(f[2], "http://") && !strings.HasPrefix(f[2], "https://") {
		t.Fatalf("unexpected first line %q", line)
	}
	s.url = f[2]
	t.Cleanup(func() { s.cmd.Process.Kill() })
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("strata serve exited with %v; stderr: %s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("strata serve did not stop within 30 s of SIGTERM; stderr: %s", s.stderr)
	}
}

func newClient(t *testing.T, s *server) *client.Client {
	c, err := client.New(s.url, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// post sends a raw request and decodes the API's error, if any.
func post(t *testing.T, url, contentType string, body []byte) (int, *api.Error) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q is not an api.Error: %v", b, err)
	}
	if e.Status != resp.StatusCode || api.Status[e.Code] != resp.StatusCode {
		t.Fatalf("error %+v sent with status %d, the catalog says %d", e, resp.StatusCode, api.Status[e.Code])
	}
	return resp.StatusCode, &e
}

func TestE2EAppendsAndErrors(t *testing.T) {
	ctx := context.Background()
	s := start(t, t.TempDir(), "127.0.0.1:0", "--max-body", "4096")
	c := newClient(t, s)
	res, err := c.Append(ctx, "acct-1", store.NoStream, event.Event{Type: "opened", Data: []byte(`{"owner":"ada"}`)})
	if err != nil || res.Version != 1 || res.LastPosition != 1 {
		t.Fatalf("first append: %+v, %v", res, err)
	}
	// A wrong expected version: 409 with its code, and the Go sentinel
	// through the client.
	code, e := post(t, s.url+"/v1/streams/acct-1?expect=no-stream", "application/json", []byte(`{"events":[{"type":"opened"}]}`))
	if code != 409 || e.Code != api.CodeWrongExpectedVersion {
		t.Fatalf("wrong expected version: %d %+v", code, e)
	}
	if _, err := c.Append(ctx, "acct-1", store.Exactly(0), event.Event{Type: "x"}); !errors.Is(err, store.ErrWrongExpectedVersion) {
		t.Fatalf("client: %v, want ErrWrongExpectedVersion", err)
	}
	// An idempotent retry returns the first result.
	id := event.NewID()
	first, err := c.Append(ctx, "acct-1", store.Exactly(1), event.Event{ID: id, Type: "deposited", Data: []byte(`{"amount":"10"}`)})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Append(ctx, "acct-1", store.Exactly(1), event.Event{ID: id, Type: "deposited", Data: []byte(`{"amount":"10"}`)})
	if err != nil || again != first {
		t.Fatalf("retry: %+v, %v; first %+v", again, err, first)
	}
	head, _ := c.Head(ctx)
	// Bad input: 4xx with the catalog's code, and nothing written.
	for _, tc := range []struct {
		name, path, body string
		code             api.Code
	}{
		{"bad JSON", "/v1/streams/acct-1", `{"events":[{"type":`, api.CodeBadJSON},
		{"unknown field", "/v1/streams/acct-1", `{"events":[{"type":"x","dta":{}}]}`, api.CodeInvalidBody},
		{"no events", "/v1/streams/acct-1", `{"events":[]}`, api.CodeInvalidBody},
		{"oversized body", "/v1/streams/acct-1", `{"events":[{"type":"x","data":"` + strings.Repeat("a", 5000) + `"}]}`, api.CodeBodyTooLarge},
		{"invalid stream name", "/v1/streams/acct%00x", `{"events":[{"type":"x"}]}`, api.CodeInvalidStream},
		{"invalid event id", "/v1/streams/acct-1", `{"events":[{"type":"x"},{"type":"y","id":"nope"}]}`, api.CodeInvalidEvent},
		{"bad expected version", "/v1/streams/acct-1?expect=banana", `{"events":[{"type":"x"}]}`, api.CodeBadRequest},
		{"bad transaction", "/v1/authorize", `{"user_id":"u1","amount":"-5"}`, api.CodeInvalidTransaction},
		{"no such route", "/v2/nothing", `{}`, api.CodeNotFound},
	} {
		code, e := post(t, s.url+tc.path, "application/json", []byte(tc.body))
		if e == nil || e.Code != tc.code || code < 400 || code >= 500 {
			t.Errorf("%s: %d %+v, want %s", tc.name, code, e, tc.code)
		}
	}
	if h, _ := c.Head(ctx); h != head {
		t.Fatalf("head %d after refused requests, was %d", h, head)
	}
	// Reads page through the stream.
	var types []string
	for rec, err := range c.ReadStream(ctx, "acct-1", store.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, rec.Type)
	}
	if fmt.Sprint(types) != "[opened deposited]" {
		t.Fatalf("read: %v", types)
	}
	types = nil
	for rec, err := range c.ReadAll(ctx, store.ReadAllOptions{Filter: store.Filter{Types: []string{"deposited"}, StreamPrefix: "acct-"}}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, rec.Stream+"/"+rec.Type)
	}
	if fmt.Sprint(types) != "[acct-1/deposited]" {
		t.Fatalf("read all, filtered: %v", types)
	}
	for _, err := range c.ReadStream(ctx, "nobody", store.ReadStreamOptions{}) {
		if !errors.Is(err, store.ErrStreamNotFound) {
			t.Fatalf("a stream that does not exist: %v, want ErrStreamNotFound", err)
		}
	}
	// The document served is the one checked in.
	resp, err := http.Get(s.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkedIn, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if json.Unmarshal(served, &a) != nil || json.Unmarshal(checkedIn, &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("/openapi.json is not docs/openapi.json")
	}
	s.stop(t)
}

// The reference burst over HTTP: 11 transactions between 55 s and 65 s,
// the 11th denied by velocity; a retry with the id gets the recorded
// decision; the rules' checkpoint is written at SIGTERM.
func TestE2EAuthorize(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := start(t, dir, "127.0.0.1:0")
	c := newClient(t, s)
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var last rules.Transaction
	for i := range 11 {
		last = rules.Transaction{ID: event.NewID(), User: "u1", Amount: num.FromMicro(10_000_000), At: t0.Add(55*time.Second + time.Duration(i)*time.Second)}
		d, err := c.Authorize(ctx, last)
		if err != nil {
			t.Fatal(err)
		}
		want := "approve"
		if i == 10 {
			want = "deny"
		}
		if d.Outcome != want {
			t.Fatalf("transaction %d: %s, want %s", i+1, d.Outcome, want)
		}
		if i == 10 && (len(d.Fired) != 1 || d.Fired[0].Rule != "velocity" || d.Fired[0].Values[0].Value != "11") {
			t.Fatalf("the 11th: fired %+v, want velocity with count 11", d.Fired)
		}
	}
	d, err := c.Authorize(ctx, last)
	if err != nil || !d.Repeated || d.Outcome != "deny" {
		t.Fatalf("retry: %+v, %v", d, err)
	}
	// Reads of more than a page (the client asks for 1,000 at a time).
	evs := make([]event.Event, 2500)
	for i := range evs {
		evs[i] = event.Event{Type: "n", Data: []byte(fmt.Sprint(i))}
	}
	if _, err := c.Append(ctx, "many", store.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts      store.ReadStreamOptions
		n, first  int
		backwards bool
	}{
		{store.ReadStreamOptions{}, 2500, 0, false},
		{store.ReadStreamOptions{From: 1001, Limit: 1200}, 1200, 1000, false},
		{store.ReadStreamOptions{Backwards: true, Limit: 2100}, 2100, 2499, true},
	} {
		i := tc.first
		n := 0
		for rec, err := range c.ReadStream(ctx, "many", tc.opts) {
			if err != nil || string(rec.Data) != fmt.Sprint(i) {
				t.Fatalf("%+v: record %d is %s, %v; want %d", tc.opts, n, rec.Data, err, i)
			}
			n++
			if tc.backwards {
				i--
			} else {
				i++
			}
		}
		if n != tc.n {
			t.Fatalf("%+v: %d records, want %d", tc.opts, n, tc.n)
		}
	}
	n := 0
	for _, err := range c.ReadAll(ctx, store.ReadAllOptions{Filter: store.Filter{StreamPrefix: "many"}, Limit: 1700}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1700 {
		t.Fatalf("read all: %d records, want 1700", n)
	}
	s.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "rules", "authorizer.checkpoint")); err != nil {
		t.Fatalf("no rules checkpoint after SIGTERM: %v", err)
	}
	// The state carries over a restart.
	s = start(t, dir, "127.0.0.1:0")
	c = newClient(t, s)
	d, err = c.Authorize(ctx, rules.Transaction{User: "u1", Amount: num.FromMicro(1_000_000), At: t0.Add(66 * time.Second)})
	// The ten approved are in (6 s, 66 s], the denied 11th is not counted:
	// 11 with this one.
	if err != nil || d.Outcome != "deny" || len(d.Fired) != 1 || d.Fired[0].Values[0].Value != "11" {
		t.Fatalf("after restart: %+v, %v; want deny with count 11", d, err)
	}
	s.stop(t)
}

// A live subscription over SSE resumes after the connection drops (here:
// the server restarts) from the last event it delivered: every position
// once, in order.
func TestE2ESubscriptionResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	s := start(t, dir, "127.0.0.1:0")
	addr := strings.TrimPrefix(s.url, "http://")
	c := newClient(t, s)
	c.Retry = 50 * time.Millisecond
	appendN := func(c *client.Client, n int) {
		for i := range n {
			if _, err := c.Append(ctx, fmt.Sprint("s-", i%7), store.Any, event.Event{Type: "t"}); err != nil {
				t.Error(err)
				return
			}
		}
	}
	appendN(c, 50) // history
	var mu sync.Mutex
	var got []uint64
	reached := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for rec, err := range c.Subscribe(ctx, store.SubscribeOptions{}) {
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			got = append(got, rec.Position)
			n := len(got)
			mu.Unlock()
			if n == 50 {
				close(reached)
			}
			if n == 150 {
				done <- nil
				return
			}
		}
		done <- ctx.Err()
	}()
	<-reached
	appendN(c, 50) // live
	s.stop(t)      // the connection drops
	s = start(t, dir, addr)
	appendN(newClient(t, s), 50) // appended while the client reconnects
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, p := range got {
		if p != uint64(i+1) {
			t.Fatalf("delivery %d is position %d: a gap or a duplicate (%v)", i, p, got)
		}
	}
	s.stop(t)
}
