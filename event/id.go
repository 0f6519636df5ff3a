package event

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// ID is a 128-bit event identifier, written and parsed in the canonical
// UUID text form. NewID makes time-ordered (UUIDv7) ids so that ids of events
// appended close together sort close together.
type ID [16]byte

// ErrInvalidID reports text that is not a UUID.
var ErrInvalidID = errors.New("event: invalid id")

var idState struct {
	sync.Mutex
	lastMillis int64
	seq        uint16 // 12-bit counter within one millisecond (rand_a)
}

// NewID returns a new UUIDv7: 48 bits of Unix milliseconds, a 12-bit counter
// that keeps ids made in one millisecond by this process increasing, and 62
// random bits.
func NewID() ID {
	var id [1]ID
	NewIDs(id[:])
	return id[0]
}

// NewIDs fills ids with new UUIDv7s, increasing in order, reading the clock
// and the random source once for all of them: a batch costs little more
// than one id.
func NewIDs(ids []ID) {
	if len(ids) == 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&ids[0])), len(ids)*len(ID{}))
	if _, err := rand.Read(b); err != nil {
		panic("event: crypto/rand failed: " + err.Error()) // cannot happen on supported platforms
	}
	now := time.Now().UnixMilli()
	idState.Lock()
	for i := range ids {
		id := &ids[i]
		ms := now
		if ms <= idState.lastMillis {
			idState.seq++
			if idState.seq > 0x0fff { // counter exhausted: borrow the next millisecond
				idState.lastMillis++
				idState.seq = 0
			}
			ms = idState.lastMillis
		} else {
			idState.lastMillis = ms
			idState.seq = binary.BigEndian.Uint16(id[6:8]) & 0x01ff // random start, room to count up
		}
		seq := idState.seq
		id[0] = byte(ms >> 40)
		id[1] = byte(ms >> 32)
		id[2] = byte(ms >> 24)
		id[3] = byte(ms >> 16)
		id[4] = byte(ms >> 8)
		id[5] = byte(ms)
		id[6] = 0x70 | byte(seq>>8)&0x0f
		id[7] = byte(seq)
		id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	}
	idState.Unlock()
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// String formats id as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func (id ID) String() string {
	var b [36]byte
	encodeID(b[:], id)
	return string(b[:])
}

func encodeID(dst []byte, id ID) {
	hex.Encode(dst[0:8], id[0:4])
	dst[8] = '-'
	hex.Encode(dst[9:13], id[4:6])
	dst[13] = '-'
	hex.Encode(dst[14:18], id[6:8])
	dst[18] = '-'
	hex.Encode(dst[19:23], id[8:10])
	dst[23] = '-'
	hex.Encode(dst[24:], id[10:])
}

// ParseID parses the canonical UUID form (with hyphens, any letter case) or
// 32 hex digits without hyphens.
func ParseID(s string) (ID, error) {
	var id ID
	var h []byte
	switch len(s) {
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
		}
		h = make([]byte, 0, 32)
		h = append(h, s[0:8]...)
		h = append(h, s[9:13]...)
		h = append(h, s[14:18]...)
		h = append(h, s[19:23]...)
		h = append(h, s[24:]...)
	case 32:
		h = []byte(s)
	default:
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	if _, err := hex.Decode(id[:], h); err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) {
	b := make([]byte, 36)
	encodeID(b, id)
	return b, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	parsed, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}
