// Package client is a Go client of Strata's HTTP API (internal/server):
// a store.Store over HTTP (it passes the store conformance suite), and
// the fraud rules, with the API's errors turned back into the Go sentinel errors
// (errors.Is(err, store.ErrWrongExpectedVersion) holds for a 409).
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// Client talks to one Strata server.
type Client struct {
	base   string
	hc     *http.Client
	token  string
	closed atomic.Bool
	// life ends at Close, and with it every subscription.
	life context.Context
	end  context.CancelFunc
	// Retry is how long Subscribe waits before reconnecting after the
	// connection drops (1 s).
	Retry time.Duration
}

// Options tunes a Client. The zero value is ready to use.
type Options struct {
	// HTTPClient is used for every request (http.DefaultClient).
	HTTPClient *http.Client
	// Token is the API token sent with every request (none when empty).
	Token string
}

// New is a client of the server at baseURL (http://127.0.0.1:7070).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q: want http://HOST:PORT", baseURL)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, token: opts.Token, Retry: time.Second}
	c.life, c.end = context.WithCancel(context.Background())
	return c, nil
}

// do sends a request and decodes a JSON answer into out (nil: discard),
// or the API's error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
	}
	return c.doRaw(ctx, method, path, query, "application/json", b, out)
}

// doRaw is do with the body already encoded (nil: none).
func (c *Client) doRaw(ctx context.Context, method, path string, query url.Values, contentType string, body []byte, out any) error {
	if c.closed.Load() {
		return store.ErrClosed
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	c.authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// decodeError turns an error answer into an *api.Error (one that is not
// the API's, from a proxy say, into an internal one with its text).
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Code != "" {
		return &e
	}
	return &api.Error{Code: api.CodeInternal, Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
}

// Append appends events to stream atomically if its version satisfies
// expected.
func (c *Client) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error) {
	// Checked here as the log checks them, so that bad input fails with the
	// same errors (*event.ValidationError) and never reaches the wire: JSON
	// would turn an invalid UTF-8 name into a different, valid one.
	if err := store.CheckAppend(stream, events, 0); err != nil {
		return store.AppendResult{}, err
	}
	req := api.AppendRequest{Events: make([]api.Event, len(events))}
	for i := range events {
		req.Events[i] = api.FromEvent(&events[i])
	}
	var res api.AppendResult
	q := url.Values{"expect": {expected.String()}}
	if err := c.do(ctx, http.MethodPost, "/v1/streams/"+url.PathEscape(stream), q, req, &res); err != nil {
		return store.AppendResult{}, err
	}
	return store.AppendResult{Version: res.Version, FirstPosition: res.FirstPosition, LastPosition: res.LastPosition}, nil
}

// Head is the position of the last event.
func (c *Client) Head(ctx context.Context) (uint64, error) {
	var out struct {
		Head uint64 `json:"head"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/head", nil, nil, &out)
	return out.Head, err
}

// pageSize is how many records a read asks for at once.
const pageSize = 1000

// ReadStream reads a stream's events, page by page.
func (c *Client) ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error] {
	return c.pages(ctx, "/v1/streams/"+url.PathEscape(stream), opts.Limit, func(q url.Values, next uint64) {
		if next > 0 {
			q.Set("from", strconv.FormatUint(next, 10))
		}
		if opts.Backwards {
			q.Set("backwards", "true")
		}
	}, opts.From)
}

// ReadAll reads the log in position order, page by page.
func (c *Client) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return c.pages(ctx, "/v1/events", opts.Limit, func(q url.Values, next uint64) {
		q.Set("after", strconv.FormatUint(next, 10))
		filterQuery(q, opts.Filter)
	}, opts.After)
}

// pages yields the records of a paged read: each page asks for at most
// pageSize (and no more than limit in all, 0: no limit), query sets the
// page's parameters from where it starts, and a page's next says where the
// following one does (0: the end).
func (c *Client) pages(ctx context.Context, path string, limit int, query func(url.Values, uint64), start uint64) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		next, left := start, limit
		for {
			n := pageSize
			if limit > 0 {
				n = min(n, left)
			}
			q := url.Values{"limit": {strconv.Itoa(n)}}
			query(q, next)
			var page api.Records
			if err := c.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
				yield(event.Record{}, err)
				return
			}
			for i := range page.Records {
				rec, err := page.Records[i].ToRecord()
				if !yield(rec, err) || err != nil {
					return
				}
			}
			left -= len(page.Records)
			if page.Next == 0 || limit > 0 && left <= 0 {
				return
			}
			next = page.Next
		}
	}
}

func filterQuery(q url.Values, f store.Filter) {
	for _, t := range f.Types {
		q.Add("type", t)
	}
	if f.StreamPrefix != "" {
		q.Set("stream_prefix", f.StreamPrefix)
	}
}

// Subscribe follows the log from opts.After over Server-Sent Events, until
// ctx ends (its error ends the sequence) or the client is closed
// (store.ErrClosed). A dropped connection is reopened after Retry from the
// last position delivered (Last-Event-ID), so nothing is missed or
// repeated; an error the server sends (an invalid filter) ends it.
func (c *Client) Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(c.life, cancel)()
		last := opts.After
		for {
			err := c.subscribeOnce(ctx, opts.Filter, &last, yield)
			switch {
			case errors.Is(err, errStop):
				return
			case c.closed.Load():
				yield(event.Record{}, store.ErrClosed)
				return
			case ctx.Err() != nil:
				yield(event.Record{}, ctx.Err())
				return
			}
			var ae *api.Error
			if errors.As(err, &ae) {
				yield(event.Record{}, err)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(c.Retry):
			}
		}
	}
}

var errStop = errors.New("client: the consumer stopped")

// Close makes every later call fail with store.ErrClosed (the client is a
// store.Store) and closes idle connections. Closing twice is harmless.
func (c *Client) Close() error {
	c.closed.Store(true)
	c.end()
	c.hc.CloseIdleConnections()
	return nil
}

func (c *Client) subscribeOnce(ctx context.Context, f store.Filter, last *uint64, yield func(event.Record, error) bool) error {
	q := url.Values{"after": {strconv.FormatUint(*last, 10)}}
	filterQuery(q, f)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/subscribe?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	c.authorize(req)
	if *last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(*last, 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var name, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data == "" {
				continue
			}
			if name == "error" {
				var e api.Error
				if json.Unmarshal([]byte(data), &e) == nil && e.Code != "" {
					return &e
				}
				return fmt.Errorf("client: subscription: %s", data)
			}
			var w api.Record
			if err := json.Unmarshal([]byte(data), &w); err != nil {
				return fmt.Errorf("client: subscription: %w", err)
			}
			rec, err := w.ToRecord()
			if err != nil {
				return err
			}
			if rec.Position <= *last {
				return fmt.Errorf("client: subscription went back from %d to %d", *last, rec.Position)
			}
			*last = rec.Position
			if !yield(rec, nil) {
				return errStop
			}
			name, data = "", ""
		case strings.HasPrefix(line, "data: "):
			data += line[len("data: "):]
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// Authorize decides about a transaction with the server's fraud rules.
func (c *Client) Authorize(ctx context.Context, txn rules.Transaction) (api.Decision, error) {
	var d api.Decision
	err := c.do(ctx, http.MethodPost, "/v1/authorize", nil, api.FromTransaction(&txn), &d)
	return d, err
}

// Rules lists the server's fraud rules.
func (c *Client) Rules(ctx context.Context) ([]api.Rule, error) {
	var out api.Rules
	err := c.do(ctx, http.MethodGet, "/v1/rules", nil, nil, &out)
	return out.Rules, err
}

// ApplyRules adds rules or replaces those of the same names: spec is a
// rule set, YAML or JSON, as `strata rules apply` reads. by is recorded as
// who made the change when the server has no tokens (else the token's
// name is).
func (c *Client) ApplyRules(ctx context.Context, by string, spec []byte) ([]api.Rule, error) {
	var out api.Rules
	err := c.doRaw(ctx, http.MethodPut, "/v1/rules", url.Values{"by": {by}}, "application/yaml", spec, &out)
	return out.Rules, err
}

// ChangeRule disables ("disable"), enables ("enable") or removes ("rm") a
// rule.
func (c *Client) ChangeRule(ctx context.Context, by, change, name string) ([]api.Rule, error) {
	method, path := http.MethodPost, "/v1/rules/"+url.PathEscape(name)
	switch change {
	case "disable", "enable":
		path += "/" + change
	case "rm":
		method = http.MethodDelete
	default:
		return nil, fmt.Errorf("client: rule change %q: want disable, enable or rm", change)
	}
	var out api.Rules
	err := c.do(ctx, method, path, url.Values{"by": {by}}, nil, &out)
	return out.Rules, err
}
