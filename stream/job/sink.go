package job

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

// line is an output as a JSON line: a result, or {"late": event}.
type line[V, R any] struct {
	ID          string       `json:"id"`
	Pos         uint64       `json:"pos"`
	Key         string       `json:"key,omitempty"`
	WindowStart *int64       `json:"window_start,omitempty"`
	WindowEnd   *int64       `json:"window_end,omitempty"`
	Value       *R           `json:"value,omitempty"`
	Firing      uint32       `json:"firing,omitempty"`
	Late        *lateLine[V] `json:"late,omitempty"`
}

type lateLine[V any] struct {
	Key   string `json:"key"`
	Time  int64  `json:"ts"`
	Value V      `json:"value"`
}

// appendLine encodes o as one JSON line.
func appendLine[V, R any](b []byte, o *Output[V, R]) ([]byte, error) {
	l := line[V, R]{ID: o.ID(), Pos: o.Pos}
	if o.Late {
		l.Late = &lateLine[V]{o.Event.Key, o.Event.Time, o.Event.Value}
	} else {
		r := &o.Result
		l.Key, l.WindowStart, l.WindowEnd, l.Value, l.Firing = r.Key, &r.Window.Start, &r.Window.End, &r.Value, r.Firing
	}
	j, err := json.Marshal(&l)
	if err != nil {
		return b, err
	}
	return append(append(b, j...), '\n'), nil
}

// WriterSink writes outputs as JSON lines to W (stdout, say). It cannot
// rewind: after a crash it sees outputs again, with the same ids.
type WriterSink[V, R any] struct {
	W   io.Writer
	buf []byte
}

// Write implements Sink.
func (s *WriterSink[V, R]) Write(_ context.Context, outs []Output[V, R]) error {
	s.buf = s.buf[:0]
	var err error
	for i := range outs {
		if s.buf, err = appendLine(s.buf, &outs[i]); err != nil {
			return err
		}
	}
	_, err = s.W.Write(s.buf)
	return err
}

// FuncSink hands outputs to a function.
type FuncSink[V, R any] func(ctx context.Context, outs []Output[V, R]) error

// Write implements Sink.
func (f FuncSink[V, R]) Write(ctx context.Context, outs []Output[V, R]) error { return f(ctx, outs) }

// FileSink writes outputs as JSON lines to a file it can truncate back to a
// checkpoint: with it, a job restarted after a crash leaves exactly the
// file an uninterrupted run would have written.
type FileSink[V, R any] struct {
	Path string
	f    *os.File
	w    *bufio.Writer
	off  int64
	buf  []byte
}

// Rewind implements Committer: it opens the file and cuts it at mark.
func (s *FileSink[V, R]) Rewind(_ context.Context, mark []byte) error {
	var off int64
	if mark != nil {
		if len(mark) != 8 {
			return fmt.Errorf("job: file sink mark of %d bytes", len(mark))
		}
		off = int64(binary.LittleEndian.Uint64(mark))
	}
	if s.f == nil {
		f, err := os.OpenFile(s.Path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		s.f, s.w = f, bufio.NewWriterSize(f, 1<<20)
	}
	if fi, err := s.f.Stat(); err != nil {
		return err
	} else if fi.Size() < off {
		return fmt.Errorf("job: %s is %d bytes, shorter than its checkpoint's %d", s.Path, fi.Size(), off)
	}
	if err := s.f.Truncate(off); err != nil {
		return err
	}
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	s.off = off
	s.w.Reset(s.f)
	return nil
}

// Write implements Sink.
func (s *FileSink[V, R]) Write(ctx context.Context, outs []Output[V, R]) error {
	if s.f == nil {
		if err := s.Rewind(ctx, nil); err != nil {
			return err
		}
	}
	var err error
	for i := range outs {
		s.buf = s.buf[:0]
		if s.buf, err = appendLine(s.buf, &outs[i]); err != nil {
			return err
		}
		n, err := s.w.Write(s.buf)
		s.off += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// Sync implements Committer.
func (s *FileSink[V, R]) Sync(context.Context) ([]byte, error) {
	if s.f == nil {
		return make([]byte, 8), nil
	}
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	if err := s.f.Sync(); err != nil {
		return nil, err
	}
	return binary.LittleEndian.AppendUint64(nil, uint64(s.off)), nil
}

// Close flushes and closes the file.
func (s *FileSink[V, R]) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.w.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	return err
}

// StreamSink appends outputs to a stream of the log as derived events:
// "window.result" and "window.late", their data the JSON line. Each
// event's id derives from the job and the output's ID, and a restarted job
// skips the outputs the stream already has after its checkpoint, so the
// stream holds each output once.
type StreamSink[V, R any] struct {
	Store  store.Store
	Stream string
	Job    string

	version uint64
	seen    map[event.ID]bool // written after the checkpoint, before a crash
	buf     []byte
}

// Rewind implements Committer.
func (s *StreamSink[V, R]) Rewind(ctx context.Context, mark []byte) error {
	s.version, s.seen = 0, nil
	if mark != nil {
		if len(mark) != 8 {
			return fmt.Errorf("job: stream sink mark of %d bytes", len(mark))
		}
		s.version = binary.LittleEndian.Uint64(mark)
	}
	for rec, err := range s.Store.ReadStream(ctx, s.Stream, store.ReadStreamOptions{From: s.version + 1}) {
		if errors.Is(err, store.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return err
		}
		if s.seen == nil {
			s.seen = map[event.ID]bool{}
		}
		s.seen[rec.ID] = true
		s.version = rec.Version
	}
	return nil
}

func (s *StreamSink[V, R]) id(o *Output[V, R]) event.ID {
	h := sha1.Sum([]byte(s.Job + "\x00" + o.ID()))
	var id event.ID
	copy(id[:], h[:16])
	id[6] = id[6]&0x0f | 0x50 // a name-based (v5-style) UUID
	id[8] = id[8]&0x3f | 0x80
	return id
}

// Write implements Sink.
func (s *StreamSink[V, R]) Write(ctx context.Context, outs []Output[V, R]) error {
	evs := make([]event.Event, 0, len(outs))
	for i := range outs {
		o := &outs[i]
		id := s.id(o)
		if s.seen[id] {
			continue
		}
		data, err := appendLine(nil, o)
		if err != nil {
			return err
		}
		typ := "window.result"
		if o.Late {
			typ = "window.late"
		}
		evs = append(evs, event.Event{ID: id, Type: typ, Data: data[:len(data)-1]})
	}
	for len(evs) > 0 {
		n := min(len(evs), 1000)
		res, err := s.Store.Append(ctx, s.Stream, store.Any, evs[:n]...)
		if err != nil {
			return err
		}
		s.version = res.Version
		evs = evs[n:]
	}
	return nil
}

// Sync implements Committer: appends are durable when acknowledged.
func (s *StreamSink[V, R]) Sync(context.Context) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(nil, s.version), nil
}
