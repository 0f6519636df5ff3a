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
//	's' stream 0x00 firstVersion → k × (pos u64 | off u64 | count u32 | size u32)
//	'o' pos                      → off u64                 sparse points (sparse.go)
//	'm'                          → indexed u64 | streams u64 | synced u64
//
// An append's events have consecutive versions and positions and lie back
// to back in one segment, so a run (first position, offset, count, size)
// locates them all and one read fetches them. A stream key holds the runs of
// consecutive appends to the stream that the indexer wrote in one batch (up
// to maxRunsPerKey): the version of each run follows from the key's version
// and the counts before it. Pebble's cost is per key, so this is what keeps
// the index cheap when many streams receive single-event appends.
//
// Every stream in Pebble has a key for version 1: the indexer writes a
// stream's runs in version order, and the first batch holding the stream
// starts a key with its first run. Keys are never deleted, so the writer can
// tell whether Pebble holds a stream with a point lookup (probe.go).
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
	indexed uint64 // last indexed position
	streams uint64 // streams with at least one indexed event
	// synced is the last indexed position known to have been fsynced when it
	// was indexed (all of them in SyncAlways). Damage at or before it can
	// never be a torn write. Not every indexed position qualifies: in the
	// other durability modes the index may see records a crash then loses.
	synced uint64
}

func (m indexMeta) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, m.indexed)
	b = binary.BigEndian.AppendUint64(b, m.streams)
	return binary.BigEndian.AppendUint64(b, m.synced)
}

func decodeIndexMeta(b []byte) (indexMeta, error) {
	if len(b) != 24 {
		return indexMeta{}, fmt.Errorf("eventlog: index meta is %d bytes, want 24", len(b))
	}
	return indexMeta{
		indexed: binary.BigEndian.Uint64(b[0:]),
		streams: binary.BigEndian.Uint64(b[8:]),
		synced:  binary.BigEndian.Uint64(b[16:]),
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

// run locates the events of one append: consecutive versions of one stream
// at consecutive positions, stored back to back in one segment.
type run struct {
	version uint64 // first version
	pos     uint64 // first position
	off     int64  // offset of the first frame in its segment
	count   uint32 // events
	size    uint32 // bytes of all the frames
}

func (r run) lastVersion() uint64 { return r.version + uint64(r.count) - 1 }
func (r run) lastPos() uint64     { return r.pos + uint64(r.count) - 1 }

// maxRunsPerKey bounds the value of one stream key.
const maxRunsPerKey = 256

const runValueSize = 24

func appendRunValue(dst []byte, r run) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.pos)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.off))
	dst = binary.BigEndian.AppendUint32(dst, r.count)
	return binary.BigEndian.AppendUint32(dst, r.size)
}

// decodeRuns expands one stream key into its runs.
func decodeRuns(key, val []byte, dst []run) ([]run, error) {
	if len(val) == 0 || len(val)%runValueSize != 0 || len(key) < 8 {
		return dst, errors.New("eventlog: malformed stream index entry")
	}
	version := binary.BigEndian.Uint64(key[len(key)-8:])
	for ; len(val) > 0; val = val[runValueSize:] {
		r := run{
			version: version,
			pos:     binary.BigEndian.Uint64(val[0:]),
			off:     int64(binary.BigEndian.Uint64(val[8:])),
			count:   binary.BigEndian.Uint32(val[16:]),
			size:    binary.BigEndian.Uint32(val[20:]),
		}
		if r.count == 0 {
			return dst, errors.New("eventlog: empty run in stream index")
		}
		dst = append(dst, r)
		version += uint64(r.count)
	}
	return dst, nil
}

// indexEntry is one append as the indexer needs it.
type indexEntry struct {
	stream string
	run
}

// tailIndex answers stream lookups for records that are published but not
// yet in Pebble. Entries are added before a record is published and removed
// only after Pebble holds them, so a reader that looks here first and in
// Pebble second never misses a record.
type tailIndex struct {
	mu struct {
		sync.RWMutex
		streams map[string][]run // ascending, contiguous versions
		// indexedStreams counts streams with an event in Pebble. It moves
		// under the same lock as the entries, so that counting streams never
		// sees one in both places or in neither.
		indexedStreams uint64
	}
}

func newTailIndex() *tailIndex {
	t := &tailIndex{}
	t.mu.streams = make(map[string][]run)
	return t
}

func (t *tailIndex) add(entries []indexEntry) {
	t.mu.Lock()
	for _, e := range entries {
		t.mu.streams[e.stream] = append(t.mu.streams[e.stream], e.run)
	}
	t.mu.Unlock()
}

// trim forgets entries of the given streams at or before pos, now that
// Pebble holds them and newStreams more streams.
func (t *tailIndex) trim(streams map[string]struct{}, pos, newStreams uint64) {
	t.mu.Lock()
	t.mu.indexedStreams += newStreams
	for s := range streams {
		runs := t.mu.streams[s]
		i := 0
		for i < len(runs) && runs[i].pos <= pos {
			i++
		}
		if i == len(runs) {
			delete(t.mu.streams, s)
		} else if i > 0 {
			t.mu.streams[s] = append([]run(nil), runs[i:]...)
		}
	}
	t.mu.Unlock()
}

// snapshot copies the stream's runs published by head. A run is published
// whole, so its first position decides.
func (t *tailIndex) snapshot(stream string, head uint64) []run {
	t.mu.RLock()
	defer t.mu.RUnlock()
	runs := t.mu.streams[stream]
	n := len(runs)
	for n > 0 && runs[n-1].pos > head {
		n--
	}
	return append([]run(nil), runs[:n]...)
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
	for _, runs := range t.mu.streams {
		if len(runs) > 0 && runs[0].version == 1 && runs[0].pos <= head {
			n++
		}
	}
	return n
}

// lastIndexed returns the stream's last run in Pebble published by head
// (runs past head were indexed after the caller took its view).
func lastIndexed(db *pebble.DB, stream string, head uint64) (run, bool, error) {
	prefix := streamPrefix(stream)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return run{}, false, err
	}
	defer it.Close()
	var runs []run
	for valid := it.Last(); valid; valid = it.Prev() {
		runs, err = decodeRuns(it.Key(), it.Value(), runs[:0])
		if err != nil {
			return run{}, false, err
		}
		for i := len(runs) - 1; i >= 0; i-- {
			if runs[i].pos <= head {
				return runs[i], true, nil
			}
		}
	}
	return run{}, false, it.Error()
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
