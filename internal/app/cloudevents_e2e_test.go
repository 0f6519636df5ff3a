package app_test

import (
	"context"
	"net/http"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/stratadb/strata/store"
)

// The real binary takes CloudEvents from the SDK in both modes.
func TestE2ECloudEvents(t *testing.T) {
	ctx := context.Background()
	s := start(t, t.TempDir(), "127.0.0.1:0")
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(s.url + "/v1/cloudevents"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"binary", "structured"} {
		e := cloudevents.NewEvent()
		e.SetID("1-" + mode)
		e.SetSource("/sensors")
		e.SetType("reading.taken")
		e.SetSubject("sensor-7")
		_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{"mode": mode})
		sctx := cloudevents.WithEncodingBinary(ctx)
		if mode == "structured" {
			sctx = cloudevents.WithEncodingStructured(ctx)
		}
		res := c.Send(sctx, e)
		var hr *cehttp.Result
		if !cloudevents.IsACK(res) || !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusOK {
			t.Fatalf("%s mode: %v", mode, res)
		}
	}
	var data []string
	for rec, err := range newClient(t, s).ReadStream(ctx, "sensor-7", store.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, rec.Type+" "+string(rec.Data))
	}
	if len(data) != 2 || data[0] != `reading.taken {"mode":"binary"}` || data[1] != `reading.taken {"mode":"structured"}` {
		t.Fatalf("sensor-7 holds %q", data)
	}
	s.stop(t)
}
