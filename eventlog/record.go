package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unsafe"

	"github.com/stratadb/strata/event"
)

const (
	frameHeaderSize = 8  // length u32 | crc u32
	bodyFixedSize   = 52 // see doc.go
	flagCommit      = 1 << 0

	// body field offsets
	offPos     = 0
	offVersion = 8
	offTime    = 16
	offID      = 24
	offSchema  = 40
	offFlags   = 44
	offStrLen  = 45
	offTypLen  = 46
	offMetaLen = 48
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// frameSize is the encoded size of e in stream.
func frameSize(stream string, e *event.Event) int {
	return frameHeaderSize + bodyFixedSize + len(stream) + len(e.Type) + len(e.Metadata) + len(e.Data)
}

// appendFrame encodes e into dst with position, version, time, flags and CRC
// left zero: the writer fills them in (sealFrame) once it has ordered the
// append. Encoding happens on the caller's goroutine so the writer only
// patches and copies.
func appendFrame(dst []byte, stream string, e *event.Event) []byte {
	n := bodyFixedSize + len(stream) + len(e.Type) + len(e.Metadata) + len(e.Data)
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize+bodyFixedSize)...)
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[0:], uint32(n))
	b := h[frameHeaderSize:]
	copy(b[offID:offID+16], e.ID[:])
	binary.LittleEndian.PutUint32(b[offSchema:], e.Schema)
	b[offStrLen] = byte(len(stream))
	b[offTypLen] = byte(len(e.Type))
	binary.LittleEndian.PutUint32(b[offMetaLen:], uint32(len(e.Metadata)))
	dst = append(dst, stream...)
	dst = append(dst, e.Type...)
	dst = append(dst, e.Metadata...)
	dst = append(dst, e.Data...)
	return dst
}

// sealFrame fills in the fields only the writer knows and the CRC. frame
// starts at the length field; it returns the frame's total size.
func sealFrame(frame []byte, pos, version uint64, ns int64, flags byte) int {
	n := int(binary.LittleEndian.Uint32(frame))
	b := frame[frameHeaderSize : frameHeaderSize+n]
	binary.LittleEndian.PutUint64(b[offPos:], pos)
	binary.LittleEndian.PutUint64(b[offVersion:], version)
	binary.LittleEndian.PutUint64(b[offTime:], uint64(ns))
	b[offFlags] = flags
	binary.LittleEndian.PutUint32(frame[4:], crc(b))
	return frameHeaderSize + n
}

// errShortFrame means the buffer ends inside a frame: read more.
var errShortFrame = errors.New("eventlog: short frame")

// frameLen returns the total size of the frame at the start of b, or
// errShortFrame when b does not hold its length field. maxBody bounds the
// body length so a corrupt length is caught before it is used.
func frameLen(b []byte, maxBody int) (int, error) {
	if len(b) < frameHeaderSize {
		return 0, errShortFrame
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < bodyFixedSize || n > maxBody {
		return 0, fmt.Errorf("frame length %d outside %d..%d", n, bodyFixedSize, maxBody)
	}
	return frameHeaderSize + n, nil
}

// decodeFrame checks the frame at the start of b and decodes it into r,
// returning the frame's size. Strings and slices in r alias b: callers pass a
// buffer that is never written again (see reader.go), which is what makes the
// zero-copy strings safe.
func decodeFrame(b []byte, maxBody int, r *event.Record) (size int, flags byte, err error) {
	size, err = frameLen(b, maxBody)
	if err != nil {
		return 0, 0, err
	}
	if len(b) < size {
		return 0, 0, errShortFrame
	}
	body := b[frameHeaderSize:size]
	if got, want := crc(body), binary.LittleEndian.Uint32(b[4:]); got != want {
		return 0, 0, fmt.Errorf("crc mismatch: stored %08x, computed %08x", want, got)
	}
	sl, tl := int(body[offStrLen]), int(body[offTypLen])
	ml := int(binary.LittleEndian.Uint32(body[offMetaLen:]))
	if bodyFixedSize+sl+tl+ml > len(body) {
		return 0, 0, fmt.Errorf("field lengths %d+%d+%d exceed body length %d", sl, tl, ml, len(body))
	}
	r.Position = binary.LittleEndian.Uint64(body[offPos:])
	r.Version = binary.LittleEndian.Uint64(body[offVersion:])
	r.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(body[offTime:])))
	copy(r.ID[:], body[offID:offID+16])
	r.Schema = binary.LittleEndian.Uint32(body[offSchema:])
	p := bodyFixedSize
	r.Stream = aliasString(body[p : p+sl])
	p += sl
	r.Type = aliasString(body[p : p+tl])
	p += tl
	r.Metadata = nilIfEmpty(body[p : p+ml : p+ml])
	p += ml
	r.Data = nilIfEmpty(body[p:len(body):len(body)])
	return size, body[offFlags], nil
}

// aliasString returns a string sharing b's memory. Safe only because read
// buffers are never written after a read fills them.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// peekPos returns the position field of a frame whose header is in b.
func peekPos(b []byte) uint64 {
	return binary.LittleEndian.Uint64(b[frameHeaderSize+offPos:])
}
