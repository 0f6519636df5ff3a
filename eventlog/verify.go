package eventlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
)

// VerifyReport summarises a full check of a log directory.
type VerifyReport struct {
	Segments int    // segments checked (including one found corrupt)
	Records  uint64 // intact records read
	Bytes    int64  // bytes in the segments checked
	Head     uint64 // position of the last intact, complete append
	// TornTail is set when the last segment ends in an incomplete write,
	// which the next Open truncates; it is not corruption.
	TornTail bool
}

// Verify checks every record of every segment in dir, read-only. The first
// bad record is reported as a *CorruptionError (matching store.ErrCorrupt)
// naming the segment file and byte offset; the report then counts what was
// checked before it.
//
// Verify judges a damaged end of the log as Open would: when the log is not
// open elsewhere it reads how far the stream index knows the log was
// fsynced, and damage to those records is corruption, not a torn write. When another
// process has the log open, an incomplete last write may simply be in
// progress and is reported as TornTail.
func Verify(ctx context.Context, dir string) (VerifyReport, error) {
	var rep VerifyReport
	bases, err := listSegments(dir)
	if err != nil {
		return rep, fmt.Errorf("eventlog: list segments: %w", err)
	}
	synced, err := syncedWhenClosed(dir)
	if err != nil {
		return rep, err
	}
	next := uint64(1)
	if len(bases) > 0 {
		next = bases[0]
	}
	for i, b := range bases {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		s, err := openSegmentReader(dir, b)
		if err != nil {
			return rep, err
		}
		rep, next, err = verifySegment(s, i == len(bases)-1, next, synced, rep)
		s.r.Close()
		if err != nil {
			return rep, err
		}
	}
	rep.Head = next - 1
	if len(bases) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return rep, fmt.Errorf("eventlog: %w", err)
		}
	}
	return rep, nil
}

func verifySegment(s *segment, isLast bool, next, synced uint64, rep VerifyReport) (VerifyReport, uint64, error) {
	sc, err := checkSegment(s)
	if err != nil {
		return rep, next, err
	}
	if s.base != next {
		return rep, next, &CorruptionError{Segment: s.name, Offset: 0,
			Reason: fmt.Sprintf("segment starts at position %d, but the previous one ends at %d", s.base, next-1)}
	}
	rep.Segments++
	rep.Bytes += sc.size
	rep.Records += sc.records
	if !sc.clean() {
		if err := damage(s, &sc, isLast, synced); err != nil {
			return rep, next, err
		}
		rep.TornTail = true
	}
	return rep, sc.commitNext, nil
}

// syncedWhenClosed returns the last position the stream index knows was
// fsynced (indexMeta.synced), or 0 when the log is open in another process
// (or has no index).
func syncedWhenClosed(dir string) (uint64, error) {
	m, err := closedIndexMeta(dir)
	return m.synced, err
}

// closedIndexMeta reads the index meta of a log no process has open, read-only;
// the zero meta when it is open or has no index.
func closedIndexMeta(dir string) (indexMeta, error) {
	lf, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR, 0)
	if err != nil {
		return indexMeta{}, nil // never opened by Strata, or read-only media: judge by the segments alone
	}
	defer lf.Close()
	if lockFile(lf) != nil {
		return indexMeta{}, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "index")); err != nil {
		return indexMeta{}, nil
	}
	db, err := pebble.Open(filepath.Join(dir, "index"), &pebble.Options{ReadOnly: true, Logger: discardPebbleLogger{}})
	if err != nil {
		return indexMeta{}, fmt.Errorf("eventlog: open stream index read-only: %w", err)
	}
	defer db.Close()
	val, closer, err := db.Get(metaKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return indexMeta{}, nil
	}
	if err != nil {
		return indexMeta{}, fmt.Errorf("eventlog: read index meta: %w", err)
	}
	defer closer.Close()
	return decodeIndexMeta(val)
}
