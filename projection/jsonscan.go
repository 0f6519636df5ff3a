package projection

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// scanObject splits a JSON object into its top-level members, values left
// raw, without building anything it does not need: declarative projections
// read a few fields of every event, and encoding/json into a map cost them
// more than the SQL. It accepts what encoding/json accepts for an object
// (whitespace anywhere, escapes in strings, any nesting); keys with escapes
// are decoded. Duplicate keys: the last wins, as in encoding/json.
func scanObject(b []byte) (fields, error) {
	m := make(fields, 8)
	err := scanMembers(b, func(key string, val []byte) {
		m[strings.Clone(key)] = json.RawMessage(val)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// ScanFields fills dst (len(keys) long) with the raw JSON values of the
// top-level members of the object data named by keys, nil where missing,
// without decoding anything else: for Go projections whose Prepare reads a
// few fields of every event, where a typed decode would cost most of a
// replay. It accepts exactly what encoding/json accepts for an object; raw
// values alias data.
func ScanFields(data []byte, keys []string, dst [][]byte) error {
	if len(dst) != len(keys) {
		return errors.New("projection: ScanFields: dst and keys differ in length")
	}
	clear(dst)
	return scanMembers(data, func(key string, val []byte) {
		for i, k := range keys {
			if k == key {
				dst[i] = val
			}
		}
	})
}

// scanMembers calls member for each top-level member of the JSON object b,
// in order. key aliases b unless it had to be decoded (escapes, invalid
// UTF-8); member must not keep it.
func scanMembers(b []byte, member func(key string, val []byte)) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errBadJSON
		}
		kEnd, escaped, err := stringEnd(b, i)
		if err != nil {
			return err
		}
		var key string
		if escaped || !utf8.Valid(b[i+1:kEnd-1]) { // as encoding/json decodes them
			if key, err = decodeKey(b[i:kEnd]); err != nil {
				return err
			}
		} else {
			key = unsafe.String(unsafe.SliceData(b[i+1:kEnd-1]), kEnd-1-(i+1))
		}
		i = skipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return errBadJSON
		}
		i = skipWS(b, i+1)
		vEnd, err := valueEnd(b, i)
		if err != nil {
			return err
		}
		member(key, b[i:vEnd])
		i = skipWS(b, vEnd)
		if i >= len(b) {
			return errBadJSON
		}
		if b[i] == '}' {
			return trailing(b, i+1)
		}
		if b[i] != ',' {
			return errBadJSON
		}
		i = skipWS(b, i+1)
	}
}

// decodeKey decodes a member name with escapes. It is a function of its own
// so that only this rare path pays for the string escaping to the heap: in
// scanMembers the variable made every member of every event allocate.
func decodeKey(raw []byte) (string, error) {
	var key string
	err := json.Unmarshal(raw, &key)
	return key, err
}

var (
	errNotObject = errors.New("event data is not a JSON object")
	errBadJSON   = errors.New("malformed JSON")
)

func trailing(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return errBadJSON
	}
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) (end int, escaped bool, err error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped, nil
		default:
			if b[j] < 0x20 {
				return 0, false, errBadJSON
			}
		}
	}
	return 0, false, errBadJSON
}

// valueEnd returns the index after the JSON value starting at b[i]. Nested
// values are checked with encoding/json (they are rare in events' hot
// fields and only need to be valid); scalars are checked here.
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errBadJSON
	}
	switch c := b[i]; {
	case c == '"':
		end, escaped, err := stringEnd(b, i)
		if err == nil && escaped && !json.Valid(b[i:end]) {
			return 0, errBadJSON // a bad escape
		}
		return end, err
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					if !json.Valid(b[i : j+1]) {
						return 0, errBadJSON
					}
					return j + 1, nil
				}
			}
		}
		return 0, errBadJSON
	default:
		j := i
		for j < len(b) && !strings.ContainsRune(" \t\n\r,}]", rune(b[j])) {
			j++
		}
		if j == i || !json.Valid(b[i:j]) {
			return 0, errBadJSON
		}
		return j, nil
	}
}
