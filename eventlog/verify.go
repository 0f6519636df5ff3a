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
// open elsewhere it reads how far the stream index reached, and damage to
// records the index has seen is corruption, not a torn write. When another
// process has the log open, an incomplete last write may simply be in
// progress and is reported as TornTail.
func Verify(ctx context.Context, dir string) (VerifyReport, error) {
	var rep VerifyReport
	bases, err := listSegments(dir)
	if err != nil {
		return rep, fmt.Errorf("eventlog: list segments: %w", err)
	}
	indexed, err := indexedWhenClosed(dir)
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
		rep, next, err = verifySegment(s, i == len(bases)-1, next, indexed, rep)
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

func verifySegment(s *segment, isLast bool, next, indexed uint64, rep VerifyReport) (VerifyReport, uint64, error) {
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
		if err := damage(s, &sc, isLast, indexed); err != nil {
			return rep, next, err
		}
		rep.TornTail = true
	}
	return rep, sc.commitNext, nil
}

// indexedWhenClosed returns the last position the stream index covers, or 0
// when the log is open in another process (or has no index).
func indexedWhenClosed(dir string) (uint64, error) {
	lf, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR, 0)
	if err != nil {
		return 0, nil // never opened by Strata, or read-only media: judge by the segments alone
	}
	defer lf.Close()
	if lockFile(lf) != nil {
		return 0, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "index")); err != nil {
		return 0, nil
	}
	db, err := pebble.Open(filepath.Join(dir, "index"), &pebble.Options{ReadOnly: true, Logger: discardPebbleLogger{}})
	if err != nil {
		return 0, fmt.Errorf("eventlog: open stream index read-only: %w", err)
	}
	defer db.Close()
	val, closer, err := db.Get(metaKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("eventlog: read index meta: %w", err)
	}
	defer closer.Close()
	m, err := decodeIndexMeta(val)
	return m.indexed, err
}
