package eventlog

import (
	"bytes"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// The writer looks a stream up in the index the first time it is appended
// to since open (writerHead). Most such streams do not exist yet: an
// application that starts one stream per order or account appends with
// store.NoStream to a new stream every time. Finding the last run with a
// fresh iterator (lastRun) costs that append far more than the append
// itself: NewIter, a seek in every memtable, and an index and a data block
// read from every level, which for streams scattered over the key space
// are seldom cached. So the writer first asks a cheaper question, "does
// Pebble hold this stream at all?", with a probe that needs none of that:
//
//   - Every stream in Pebble has a key for version 1 (index.go), so the
//     question is a point lookup: SeekPrefixGE with the whole key (Pebble's
//     default Split makes the whole key the prefix). It consults each
//     sstable's bloom filter (openIndex) before its index and data blocks;
//     UseL6Filters, because L6 holds most of the index and Pebble skips its
//     filters by default. The filters take 10 bits per key: the block cache
//     (indexCacheSize) holds them all up to some 40 million keys.
//   - It reads sstables only (OnlyReadGuaranteedDurable: no memtables). A
//     stream that is not in the writer's heads has not been appended to
//     since open (heads are never evicted), so every key it has was written
//     before the writer started, by an earlier process or by catchUpIndex,
//     and recover flushed those to sstables, where compactions keep them.
//     Keys written since belong to streams in heads and do not matter here.
//   - For the same reason the probe may see an old state of the index, so
//     one iterator serves many lookups (creating one costs more than a
//     seek). It is replaced once Pebble has flushed or compacted since it
//     was created (Log.indexChanges), and dropped between batches when it
//     is stale, so that it never pins replaced sstables or flushed
//     memtables for long.
//
// When the probe finds the stream, writerHead reads its last run as before.
type streamProbe struct {
	it  *pebble.Iterator // nil until the first lookup, and when stale
	gen uint64           // Log.indexChanges when it was created
	key []byte           // scratch
}

// indexedBeforeOpen reports whether the stream index holds the stream, for
// a stream the writer has not appended to since open (see streamProbe).
// Only the writer calls it.
func (l *Log) indexedBeforeOpen(stream string) (bool, error) {
	p := &l.w.probe
	if gen := l.indexChanges.Load(); p.it == nil || p.gen != gen {
		p.close()
		// Pebble is closed only after the writer has stopped (Close).
		it, err := l.db.NewIter(&pebble.IterOptions{OnlyReadGuaranteedDurable: true, UseL6Filters: true})
		if err != nil {
			return false, err
		}
		p.it, p.gen = it, gen
	}
	p.key = append(append(append(p.key[:0], prefixStream), stream...), 0)
	p.key = binary.BigEndian.AppendUint64(p.key, 1)
	found := p.it.SeekPrefixGE(p.key) && bytes.Equal(p.it.Key(), p.key)
	if err := p.it.Error(); err != nil {
		p.close()
		return false, err
	}
	return found, nil
}

// releaseStaleProbe drops the probe's iterator if Pebble has flushed or
// compacted since it was created: the writer calls it between batches, so
// that an idle writer pins nothing Pebble has replaced.
func (l *Log) releaseStaleProbe() {
	if p := &l.w.probe; p.it != nil && p.gen != l.indexChanges.Load() {
		p.close()
	}
}

func (p *streamProbe) close() {
	if p.it != nil {
		_ = p.it.Close() // an error was returned by the lookup that saw it
		p.it = nil
	}
}
