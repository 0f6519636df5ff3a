package job

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"time"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/jsonscan"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/store"
)

// LogSource reads a job's inputs from the log: the records of Types (all
// when empty), turned into inputs by Extract. Positions are log positions.
type LogSource[V any] struct {
	Store store.Store
	Types []string
	// Extract turns a record into an input; ok false skips the record.
	Extract func(rec *event.Record) (in Input[V], ok bool, err error)
	// Follow keeps reading live appends after the head (the job then runs
	// until its context ends); otherwise the source ends at the head as it
	// is when the job starts.
	Follow bool
}

// Items implements Source.
func (s *LogSource[V]) Items(ctx context.Context, after uint64) iter.Seq2[Item[V], error] {
	return func(yield func(Item[V], error) bool) {
		filter := store.Filter{Types: s.Types}
		var recs iter.Seq2[event.Record, error]
		if s.Follow {
			recs = s.Store.Subscribe(ctx, store.SubscribeOptions{After: after, Filter: filter})
		} else {
			recs = s.Store.ReadAll(ctx, store.ReadAllOptions{After: after, Filter: filter})
		}
		for rec, err := range recs {
			if err != nil {
				yield(Item[V]{}, err)
				return
			}
			in, ok, err := s.Extract(&rec)
			if err != nil {
				yield(Item[V]{}, fmt.Errorf("event %d (%s in %s): %w", rec.Position, rec.Type, rec.Stream, err))
				return
			}
			if !yield(Item[V]{Pos: rec.Position, Input: in, Skip: !ok}, nil) {
				return
			}
		}
	}
}

// LinesSource reads inputs from lines of text (JSON lines, say); a line's
// position is its number, so a resumed job skips the lines it has done.
// Blank lines are skipped.
type LinesSource[V any] struct {
	R     io.Reader
	Parse func(line []byte) (Input[V], error)
}

// Items implements Source.
func (s *LinesSource[V]) Items(ctx context.Context, after uint64) iter.Seq2[Item[V], error] {
	return func(yield func(Item[V], error) bool) {
		sc := bufio.NewScanner(s.R)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var n uint64
		for sc.Scan() {
			n++
			if n <= after {
				continue
			}
			if n%1024 == 0 && ctx.Err() != nil {
				yield(Item[V]{}, ctx.Err())
				return
			}
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				if !yield(Item[V]{Pos: n, Skip: true}, nil) {
					return
				}
				continue
			}
			in, err := s.Parse(line)
			if err != nil {
				yield(Item[V]{}, fmt.Errorf("line %d: %w", n, err))
				return
			}
			if !yield(Item[V]{Pos: n, Input: in}, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(Item[V]{}, err)
		}
	}
}

// Fields reads an input from the top-level members of a JSON object: the
// key, an exact decimal value and the event time. Time holds epoch
// milliseconds (a number) or an RFC 3339 string.
type Fields struct {
	Key   string // required
	Value string // empty: every value is 0 (for counting)
	// Time names the event time's member; empty: the record's time (Record
	// only; Line needs one).
	Time string
}

// Record is an Extract for LogSource reading the record's data.
func (f Fields) Record(rec *event.Record) (Input[num.Dec], bool, error) {
	in, err := f.parse(rec.Data, f.Time == "")
	if err != nil {
		return in, false, err
	}
	if f.Time == "" {
		in.Time = rec.Time.UnixMilli()
	}
	return in, true, nil
}

// Line is a Parse for LinesSource.
func (f Fields) Line(line []byte) (Input[num.Dec], error) {
	if f.Time == "" {
		return Input[num.Dec]{}, errors.New("job: lines need a time field")
	}
	return f.parse(line, false)
}

func (f Fields) parse(data []byte, noTime bool) (Input[num.Dec], error) {
	var in Input[num.Dec]
	keys := []string{f.Key, f.Value, f.Time}
	var vals [3][]byte
	if err := jsonscan.Fields(data, keys, vals[:]); err != nil {
		return in, err
	}
	if vals[0] == nil {
		return in, fmt.Errorf("no %q member", f.Key)
	}
	key, err := scalarText(vals[0])
	if err != nil {
		return in, fmt.Errorf("%s: %w", f.Key, err)
	}
	in.Key = key
	if f.Value != "" {
		if vals[1] == nil {
			return in, fmt.Errorf("no %q member", f.Value)
		}
		if in.Value, err = num.ParseJSON(vals[1]); err != nil {
			return in, fmt.Errorf("%s: %w", f.Value, err)
		}
	}
	if !noTime {
		if vals[2] == nil {
			return in, fmt.Errorf("no %q member", f.Time)
		}
		if in.Time, err = ParseTime(vals[2]); err != nil {
			return in, fmt.Errorf("%s: %w", f.Time, err)
		}
	}
	return in, nil
}

// scalarText is a JSON string's contents, or another scalar's text.
func scalarText(raw []byte) (string, error) {
	if len(raw) > 0 && raw[0] == '"' {
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1]), nil
		}
		s, err := strconv.Unquote(string(raw))
		if err != nil {
			return "", fmt.Errorf("bad string %s", raw)
		}
		return s, nil
	}
	if len(raw) == 0 || raw[0] == '{' || raw[0] == '[' || string(raw) == "null" {
		return "", fmt.Errorf("%s is not a string or number", raw)
	}
	return string(raw), nil
}

// ParseTime reads event time from JSON: an integer of epoch milliseconds, or
// an RFC 3339 string (to the millisecond; finer digits are dropped).
func ParseTime(raw []byte) (int64, error) {
	if len(raw) > 0 && raw[0] == '"' {
		t, err := time.Parse(time.RFC3339Nano, string(raw[1:len(raw)-1]))
		if err != nil {
			return 0, err
		}
		return t.UnixMilli(), nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is neither epoch milliseconds nor an RFC 3339 string", raw)
	}
	return ms, nil
}
