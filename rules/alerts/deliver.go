package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// Sink takes one alert. An error makes Deliver send it again later, unless
// it matches ErrRejected.
type Sink interface {
	// Send delivers the alert (raw is its JSON) under its idempotency key
	// id, which a receiver uses to drop repeats.
	Send(ctx context.Context, id string, a Alert, raw []byte) error
}

// ErrRejected is wrapped by a sink's error for an alert the receiver
// refuses for good (a 4xx other than 408 and 429): Deliver stops there,
// with the checkpoint before it, rather than skip it or retry forever.
var ErrRejected = errors.New("alerts: rejected by the receiver")

// DeliverOptions controls Deliver.
type DeliverOptions struct {
	// Name identifies the delivery: its checkpoint is the stream
	// alerts-delivered-NAME. Required.
	Name string
	// Follow keeps delivering new alerts until ctx is done; otherwise
	// Deliver returns once every alert recorded has been delivered.
	Follow bool
	// Backoff is the first wait before sending again (100 ms); it doubles
	// up to MaxBackoff (30 s).
	Backoff, MaxBackoff time.Duration
	// Delivered is called after each alert the sink took.
	Delivered func(Alert)
}

// TypeDelivered is the checkpoint event of a delivery.
const TypeDelivered = "alert.delivered"

type delivered struct {
	Position uint64 `json:"position"` // of the last alert the sink took
}

// Deliver sends the alerts after the delivery's checkpoint to sink, in
// order, at least once: an alert is sent again (with backoff) until the
// sink takes it, and only then does the checkpoint move past it, so a crash
// in between sends it again, with the same idempotency key.
func Deliver(ctx context.Context, st store.Store, sink Sink, opts DeliverOptions) error {
	if opts.Name == "" {
		return errors.New("alerts: a delivery needs a name")
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	cpStream := "alerts-delivered-" + opts.Name
	if err := event.ValidateStream(cpStream); err != nil {
		return fmt.Errorf("alerts: delivery name: %w", err)
	}
	var cp delivered
	version, err := last(ctx, st, cpStream, &cp)
	if err != nil {
		return err
	}
	filter := store.Filter{Types: []string{TypeAlert}, StreamPrefix: Stream}
	for rec, err := range records(ctx, st, cp.Position, filter, opts.Follow) {
		if err != nil {
			return fmt.Errorf("alerts: read alerts: %w", err)
		}
		if rec.Stream != Stream {
			continue
		}
		var a Alert
		if err := json.Unmarshal(rec.Data, &a); err != nil {
			return fmt.Errorf("alerts: alert at %d: %w", rec.Position, err)
		}
		if err := send(ctx, sink, rec.ID.String(), a, rec.Data, opts); err != nil {
			return err
		}
		data, _ := json.Marshal(delivered{rec.Position})
		if err := appendAt(ctx, st, cpStream, &version, event.Event{Type: TypeDelivered, Data: data}); err != nil {
			return err
		}
		if opts.Delivered != nil {
			opts.Delivered(a)
		}
	}
	return nil
}

// send retries until the sink takes the alert, it rejects it, or ctx ends.
func send(ctx context.Context, sink Sink, id string, a Alert, raw []byte, opts DeliverOptions) error {
	wait := opts.Backoff
	for {
		err := sink.Send(ctx, id, a, raw)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrRejected) {
			return fmt.Errorf("alerts: alert %s: %w", id, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("alerts: alert %s not delivered (%v): %w", id, err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, opts.MaxBackoff)
	}
}

// Webhook posts each alert as JSON to URL, with its idempotency key in the
// Idempotency-Key header.
type Webhook struct {
	URL    string
	Client *http.Client // http.DefaultClient when nil
	Header http.Header  // added to every request (an Authorization, say)
}

func (w *Webhook) Send(ctx context.Context, id string, _ Alert, raw []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	for k, vs := range w.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return fmt.Errorf("webhook %s: %s", w.URL, resp.Status)
	default:
		return fmt.Errorf("%w: webhook %s: %s", ErrRejected, w.URL, resp.Status)
	}
}

// NATS publishes each alert to Subject, with its idempotency key in the
// Nats-Msg-Id header (JetStream drops repeats within its duplicate window),
// and waits for the server to have it.
type NATS struct {
	Conn    *nats.Conn
	Subject string
	// Timeout bounds the wait for the server (5 s).
	Timeout time.Duration
}

func (n *NATS) Send(ctx context.Context, id string, _ Alert, raw []byte) error {
	msg := nats.NewMsg(n.Subject)
	msg.Data = raw
	msg.Header.Set(nats.MsgIdHdr, id)
	if err := n.Conn.PublishMsg(msg); err != nil {
		return err
	}
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return n.Conn.FlushTimeout(timeout)
}
