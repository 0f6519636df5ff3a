package eventlog

// TEMPORARY skeleton so that dependants compile while the engine is written.

import (
	"context"
	"errors"
	"iter"

	"github.com/stratadb/strata/event"
	"github.com/stratadb/strata/store"
)

var errTODO = errors.New("eventlog: not implemented yet")

// Log is the embedded event log. It implements store.Store.
type Log struct{}

var _ store.Store = (*Log)(nil)

// Open opens (creating if needed) the log in dir.
func Open(dir string, opts Options) (*Log, error) { return nil, errTODO }

func (l *Log) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...event.Event) (store.AppendResult, error) {
	return store.AppendResult{}, errTODO
}
func (l *Log) ReadStream(ctx context.Context, stream string, opts store.ReadStreamOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) { yield(event.Record{}, errTODO) }
}
func (l *Log) ReadAll(ctx context.Context, opts store.ReadAllOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) { yield(event.Record{}, errTODO) }
}
func (l *Log) Subscribe(ctx context.Context, opts store.SubscribeOptions) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) { yield(event.Record{}, errTODO) }
}
func (l *Log) Head(ctx context.Context) (uint64, error) { return 0, errTODO }
func (l *Log) Close() error                             { return errTODO }

// Stats describes the log's size.
type Stats struct {
	Head     uint64 // last acknowledged position
	Streams  uint64 // streams with at least one event
	Segments int    // segment files
	Bytes    int64  // bytes in segment files
	Indexed  uint64 // last position the stream index covers
}

// Stats returns the log's current size.
func (l *Log) Stats(ctx context.Context) (Stats, error) { return Stats{}, errTODO }

// VerifyReport summarises a full check of a log directory.
type VerifyReport struct {
	Segments int
	Records  uint64
	Bytes    int64
	Head     uint64
}

// Verify checks every record of every segment in dir without opening the log
// for writing. The first bad record is reported as a *CorruptionError (which
// matches store.ErrCorrupt) naming the segment file and byte offset.
func Verify(ctx context.Context, dir string) (VerifyReport, error) { return VerifyReport{}, errTODO }
