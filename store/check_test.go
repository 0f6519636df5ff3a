package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/stratadb/strata/event"
)

func TestCheckAppend(t *testing.T) {
	id := event.NewID()
	many := make([]event.Event, 20)
	for i := range many {
		many[i] = event.Event{ID: event.NewID(), Type: "t"}
	}
	dupMany := append([]event.Event(nil), many...)
	dupMany[19].ID = dupMany[3].ID
	for _, tc := range []struct {
		name   string
		stream string
		events []event.Event
		max    int
		want   error
		msg    string
	}{
		{"fine", "s-1", []event.Event{{Type: "t"}, {Type: "t"}}, 0, nil, ""},
		{"no stream", "", []event.Event{{Type: "t"}}, 0, event.ErrInvalid, "stream"},
		{"no events", "s-1", nil, 0, event.ErrInvalid, "no events"},
		{"bad type", "s-1", []event.Event{{Type: "t"}, {Type: "a\nb"}}, 0, event.ErrInvalid, "event 1 of 2"},
		{"too large", "s-1", []event.Event{{Type: "t", Data: make([]byte, 100)}}, 64, ErrEventTooLarge, "the limit is 64"},
		{"no limit", "s-1", []event.Event{{Type: "t", Data: make([]byte, 100)}}, 0, nil, ""},
		{"same id twice", "s-1", []event.Event{{ID: id, Type: "t"}, {ID: id, Type: "t"}}, 0, event.ErrInvalid, "events 0 and 1"},
		{"same id twice, many", "s-1", dupMany, 0, event.ErrInvalid, "events 3 and 19"},
		{"distinct, many", "s-1", many, 0, nil, ""},
	} {
		err := CheckAppend(tc.stream, tc.events, tc.max)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v mentioning %q", tc.name, err, tc.want, tc.msg)
		}
	}
}
