package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// The stream index lives in Pebble under these keys (integers big-endian so
// that they sort):
//
//	's' stream 0x00 version  → pos u64 | off u64    every record
//	'o' pos                  → off u64               sparse points (sparse.go)
//	'm'                      → indexed u64 | resumeSeg u64 | resumeOff u64 | streams u64
//
// Stream names contain no control characters (event.ValidateStream), so
// 0x00 cleanly ends the name. The 'm' key is written in the same batch as
// the entries it covers, so whatever prefix of batches survives a crash is
// consistent.
const (
	prefixStream = 's'
	prefixSparse = 'o'
)

var metaKey = []byte{'m'}

type indexMeta struct {
	indexed   uint64 // last indexed position
	resumeSeg uint64 // base of the segment holding indexed+1
	resumeOff int64  // offset of indexed+1 in it
	streams   uint64 // streams with at least one indexed event
}

func (m indexMeta) encode() []byte {
	b := make([]byte, 32)
	binary.BigEndian.PutUint64(b[0:], m.indexed)
	binary.BigEndian.PutUint64(b[8:], m.resumeSeg)
	binary.BigEndian.PutUint64(b[16:], uint64(m.resumeOff))
	binary.BigEndian.PutUint64(b[24:], m.streams)
	return b
}

func decodeIndexMeta(b []byte) (indexMeta, error) {
	if len(b) != 32 {
		return indexMeta{}, fmt.Errorf("eventlog: index meta is %d bytes, want 32", len(b))
	}
	return indexMeta{
		indexed:   binary.BigEndian.Uint64(b[0:]),
		resumeSeg: binary.BigEndian.Uint64(b[8:]),
		resumeOff: int64(binary.BigEndian.Uint64(b[16:])),
		streams:   binary.BigEndian.Uint64(b[24:]),
	}, nil
}

func streamPrefix(stream string) []byte {
	k := make([]byte, 0, len(stream)+10)
	k = append(k, prefixStream)
	k = append(k, stream...)
	return append(k, 0)
}

func streamKey(stream string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(streamPrefix(stream), version)
}

func encodeOff(off int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(off)) }

func sparseKey(pos uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixSparse}, pos)
}

// loc says where a record is: its position (which names the segment) and its
// offset in that segment.
type loc struct {
	version uint64
	pos     uint64
	off     int64
}

func decodeLoc(key, val []byte) (loc, error) {
	if len(val) != 16 || len(key) < 8 {
		return loc{}, errors.New("eventlog: malformed stream index entry")
	}
	return loc{
		version: binary.BigEndian.Uint64(key[len(key)-8:]),
		pos:     binary.BigEndian.Uint64(val[0:]),
		off:     int64(binary.BigEndian.Uint64(val[8:])),
	}, nil
}

// indexEntry is one record as the indexer needs it.
type indexEntry struct {
	stream string
	loc
	end int64 // offset just past the record: where the next one starts
}

// tailIndex answers stream lookups for records that are published but not
// yet in Pebble. Entries are added before a record is published and removed
// only after Pebble holds them, so a reader that looks here first and in
// Pebble second never misses a record.
type tailIndex struct {
	mu struct {
		sync.RWMutex
		streams map[string][]loc // ascending, contiguous versions
		// indexedStreams counts streams with an event in Pebble. It moves
		// under the same lock as the entries, so that counting streams never
		// sees one in both places or in neither.
		indexedStreams uint64
	}
}

func newTailIndex() *tailIndex {
	t := &tailIndex{}
	t.mu.streams = make(map[string][]loc)
	return t
}

func (t *tailIndex) add(entries []indexEntry) {
	t.mu.Lock()
	for _, e := range entries {
		t.mu.streams[e.stream] = append(t.mu.streams[e.stream], e.loc)
	}
	t.mu.Unlock()
}

// trim forgets entries of the given streams at or before pos, now that
// Pebble holds them and newStreams more streams.
func (t *tailIndex) trim(streams map[string]struct{}, pos, newStreams uint64) {
	t.mu.Lock()
	t.mu.indexedStreams += newStreams
	for s := range streams {
		locs := t.mu.streams[s]
		i := 0
		for i < len(locs) && locs[i].pos <= pos {
			i++
		}
		if i == len(locs) {
			delete(t.mu.streams, s)
		} else if i > 0 {
			t.mu.streams[s] = append([]loc(nil), locs[i:]...)
		}
	}
	t.mu.Unlock()
}

// snapshot copies the stream's entries with position ≤ head.
func (t *tailIndex) snapshot(stream string, head uint64) []loc {
	t.mu.RLock()
	defer t.mu.RUnlock()
	locs := t.mu.streams[stream]
	n := len(locs)
	for n > 0 && locs[n-1].pos > head {
		n--
	}
	return append([]loc(nil), locs[:n]...)
}

func (t *tailIndex) indexedStreamCount() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.mu.indexedStreams
}

// countStreams counts streams with an event at or before head.
func (t *tailIndex) countStreams(head uint64) uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := t.mu.indexedStreams
	for _, locs := range t.mu.streams {
		if len(locs) > 0 && locs[0].version == 1 && locs[0].pos <= head {
			n++
		}
	}
	return n
}

// lastIndexed returns the stream's highest entry in Pebble at or before
// head (entries past head were indexed after the caller took its view).
func lastIndexed(db *pebble.DB, stream string, head uint64) (loc, bool, error) {
	prefix := streamPrefix(stream)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return loc{}, false, err
	}
	defer it.Close()
	for valid := it.Last(); valid; valid = it.Prev() {
		l, err := decodeLoc(it.Key(), it.Value())
		if err != nil {
			return loc{}, false, err
		}
		if l.pos <= head {
			return l, true, nil
		}
	}
	return loc{}, false, it.Error()
}

// prefixEnd is the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
