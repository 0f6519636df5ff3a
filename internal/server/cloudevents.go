package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/store"
)

// CloudEvents 1.0 over HTTP (https://github.com/cloudevents/spec): one
// event per request, in binary mode (attributes in ce-* headers, the body
// is the data) or structured mode (application/cloudevents+json). The
// attributes are kept in the event's metadata under "cloudevents", so that
// a subscription can give the event back as it came.

const ceMediaType = "application/cloudevents+json"

type cloudEventInput struct {
	Stream      string `query:"stream" doc:"the stream to append to (default: the event's subject, else its source)"`
	Expect      string `query:"expect" default:"any" doc:"any, no-stream, stream-exists, or the stream's version"`
	ContentType string `header:"Content-Type"`
	RawBody     []byte
	headers     map[string]string // ce-* headers, the prefix cut, lower case
}

// Resolve collects the ce-* headers: their names are open-ended
// (extensions), so they cannot be struct fields.
func (in *cloudEventInput) Resolve(ctx huma.Context) []error {
	in.headers = map[string]string{}
	ctx.EachHeader(func(name, value string) {
		if n := strings.ToLower(name); strings.HasPrefix(n, "ce-") {
			in.headers[n[3:]] = value
		}
	})
	return nil
}

type cloudEventOutput struct {
	Body struct {
		Stream string `json:"stream"`
		api.AppendResult
	}
}

func (s *Server) registerCloudEvents() {
	huma.Register(s.api, scoped(huma.Operation{
		OperationID: "cloudevents", Method: http.MethodPost, Path: "/v1/cloudevents",
		Summary:      "Append one CloudEvent (1.0, HTTP binary or structured mode)",
		Description:  "Binary mode: the attributes in ce-specversion, ce-id, ce-source, ce-type (ce-subject, ce-time, extensions optional) and the data as the body with its Content-Type. Structured mode: Content-Type application/cloudevents+json and the event as JSON. The stream is `stream`, else the subject, else the source; the event's id is derived from (source, id), so a retry of the latest event of a stream is recognised. The attributes are kept in the event's metadata (`cloudevents`).",
		Tags:         []string{"log"},
		MaxBodyBytes: s.opts.MaxBodyBytes,
		Errors:       []int{400, 409, 413},
	}, config.ScopeAppend), s.cloudEvent)
}

func (s *Server) cloudEvent(ctx context.Context, in *cloudEventInput) (*cloudEventOutput, error) {
	ce, err := parseCloudEvent(in.ContentType, in.headers, in.RawBody)
	if err != nil {
		return nil, api.NewError(api.CodeInvalidEvent, "cloudevent: %v", err)
	}
	streamName := in.Stream
	if streamName == "" {
		streamName = ce.attrs["subject"]
	}
	if streamName == "" {
		streamName = ce.attrs["source"]
	}
	if err := event.ValidateStream(streamName); err != nil {
		return nil, api.NewError(api.CodeInvalidStream, "%v", err)
	}
	if err := stream(ctx, streamName); err != nil {
		return nil, err
	}
	expected, err := store.ParseExpectedVersion(in.Expect)
	if err != nil {
		return nil, api.NewError(api.CodeBadRequest, "expect: %v", err)
	}
	ev, err := ce.event()
	if err != nil {
		return nil, api.NewError(api.CodeInvalidEvent, "cloudevent: %v", err)
	}
	res, err := s.opts.Store.Append(ctx, streamName, expected, ev)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.metrics.events.Inc()
	out := &cloudEventOutput{}
	out.Body.Stream = streamName
	out.Body.AppendResult = api.AppendResult{Version: res.Version, FirstPosition: res.FirstPosition, LastPosition: res.LastPosition}
	return out, nil
}

// cloudEvent is a parsed CloudEvent: its context attributes (extensions
// included, every value a string or, from structured mode, any JSON
// value), and its data as stored.
type cloudEvent struct {
	attrs map[string]string
	ext   map[string]json.RawMessage // structured mode's non-string extension values
	data  []byte
}

var requiredAttrs = []string{"specversion", "id", "source", "type"}

func parseCloudEvent(contentType string, headers map[string]string, body []byte) (*cloudEvent, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	ce := &cloudEvent{attrs: map[string]string{}, ext: map[string]json.RawMessage{}}
	if mt == ceMediaType {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("structured mode: the body is not a JSON object: %v", err)
		}
		var data, data64 json.RawMessage
		for k, v := range m {
			switch k {
			case "data":
				data = v
			case "data_base64":
				data64 = v
			default:
				var s string
				if json.Unmarshal(v, &s) == nil {
					ce.attrs[k] = s
				} else if slices.Contains(requiredAttrs, k) {
					return nil, fmt.Errorf("%s must be a string", k)
				} else {
					ce.ext[k] = v
				}
			}
		}
		switch {
		case data != nil && data64 != nil:
			return nil, fmt.Errorf("both data and data_base64")
		case data64 != nil:
			var s string
			if err := json.Unmarshal(data64, &s); err != nil {
				return nil, fmt.Errorf("data_base64 must be a string")
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("data_base64: %v", err)
			}
			ce.data = b
		case data != nil && string(data) != "null":
			ct := ce.attrs["datacontenttype"]
			var str string
			if !isJSON(ct) && json.Unmarshal(data, &str) == nil {
				ce.data = []byte(str) // text data, carried as a JSON string
			} else {
				ce.data = data
			}
		}
	} else {
		for k, v := range headers {
			ce.attrs[k] = v
		}
		if contentType != "" {
			ce.attrs["datacontenttype"] = contentType
		}
		ce.data = body
	}
	for _, k := range requiredAttrs {
		if ce.attrs[k] == "" {
			return nil, fmt.Errorf("the %s attribute is missing (binary mode: the ce-%s header; structured mode: Content-Type %s)", k, k, ceMediaType)
		}
	}
	if v := ce.attrs["specversion"]; v != "1.0" {
		return nil, fmt.Errorf("specversion %q: only 1.0 is supported", v)
	}
	if t, ok := ce.attrs["time"]; ok {
		if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
			return nil, fmt.Errorf("time %q is not RFC 3339", t)
		}
	}
	return ce, nil
}

// isJSON reports whether a datacontenttype is JSON (or unset, which the
// spec reads as JSON in structured mode).
func isJSON(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return ct == "" || mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/json"
}

// event is the CloudEvent as a Strata event.
func (ce *cloudEvent) event() (event.Event, error) {
	meta := map[string]any{}
	for k, v := range ce.attrs {
		if k != "type" {
			meta[k] = v
		}
	}
	for k, v := range ce.ext {
		meta[k] = v
	}
	md, err := json.Marshal(map[string]any{"cloudevents": meta})
	if err != nil {
		return event.Event{}, err
	}
	ev := event.Event{ID: ceID(ce.attrs["source"], ce.attrs["id"]), Type: ce.attrs["type"], Data: ce.data, Metadata: md}
	if err := event.ValidateType(ev.Type); err != nil {
		return ev, err
	}
	return ev, nil
}

// ceID derives an event id from a CloudEvent's source and id, which
// together identify it: a version 8 UUID over their SHA-256.
func ceID(source, id string) event.ID {
	h := sha256.Sum256([]byte(source + "\x00" + id))
	var out event.ID
	copy(out[:], h[:16])
	out[6] = out[6]&0x0f | 0x80 // version 8
	out[8] = out[8]&0x3f | 0x80 // RFC 9562 variant
	return out
}

// toCloudEvent is a record as a structured-mode CloudEvent: the attributes
// it came with, if it came as one, with the stream, version and position
// as extensions.
func toCloudEvent(rec *event.Record) map[string]any {
	ce := map[string]any{
		"specversion": "1.0",
		"id":          rec.ID.String(),
		"source":      "/streams/" + rec.Stream,
		"subject":     rec.Stream,
		"time":        rec.Time.UTC().Format(time.RFC3339Nano),
	}
	var md struct {
		CloudEvents map[string]json.RawMessage `json:"cloudevents"`
	}
	if len(rec.Metadata) > 0 && json.Unmarshal(rec.Metadata, &md) == nil {
		for k, v := range md.CloudEvents {
			ce[k] = v
		}
	}
	ce["type"] = rec.Type
	ce["stratastream"] = rec.Stream
	ce["strataversion"] = rec.Version
	ce["strataposition"] = rec.Position
	ct, _ := ce["datacontenttype"].(json.RawMessage)
	var ctStr string
	_ = json.Unmarshal(ct, &ctStr)
	switch {
	case len(rec.Data) == 0:
	case json.Valid(rec.Data) && isJSON(ctStr):
		ce["data"] = json.RawMessage(rec.Data)
		if ctStr == "" {
			ce["datacontenttype"] = "application/json"
		}
	default:
		ce["data_base64"] = base64.StdEncoding.EncodeToString(rec.Data)
	}
	return ce
}
