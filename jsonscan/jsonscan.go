// Package jsonscan reads the top-level members of a JSON object without
// decoding it: each member's name, and its value left as raw JSON aliasing
// the input. It agrees with encoding/json on what is a valid object
// (whitespace anywhere, escapes in strings, any nesting, nothing after the
// object) and on member names (escapes and invalid UTF-8 decoded as
// encoding/json decodes them; of duplicate names the last wins).
//
// It exists for code that reads a few fields of every event: decoding a
// whole event costs about 1.6 µs, scanning it for a few fields about
// 0.12 µs, and a replay of hundreds of millions of events spends most of its
// time there. Fields and Members do not allocate (but to decode a member
// name with escapes or invalid UTF-8). It imports only the standard library, so packages that pick
// fields out of event JSON need not import projection (and its cgo SQLite).
package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Every error Fields, Members and Object return is one of these, but Fields'
// for dst and keys of different lengths.
var (
	// ErrNotObject: the input does not start as a JSON object (it is
	// another JSON value, or not JSON).
	ErrNotObject = errors.New("jsonscan: not a JSON object")
	// ErrSyntax: the input starts as a JSON object but is not valid JSON.
	ErrSyntax = errors.New("jsonscan: malformed JSON")
)

// Fields fills dst (len(keys) long) with the raw JSON values of the
// top-level members of the object data named by keys, nil where missing,
// without decoding anything else. Raw values alias data. It does not
// allocate.
func Fields(data []byte, keys []string, dst [][]byte) error {
	if len(dst) != len(keys) {
		return errors.New("jsonscan: Fields: dst and keys differ in length")
	}
	clear(dst)
	return Members(data, func(key string, val []byte) {
		for i, k := range keys {
			if k == key {
				dst[i] = val
			}
		}
	})
}

// Object returns the top-level members of the JSON object b, values left
// raw (aliasing b). Duplicate names: the last wins, as in encoding/json.
func Object(b []byte) (map[string]json.RawMessage, error) {
	m := make(map[string]json.RawMessage, 8)
	err := Members(b, func(key string, val []byte) {
		m[strings.Clone(key)] = json.RawMessage(val)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Members calls member for each top-level member of the JSON object b, in
// order, duplicates included; val aliases b. key aliases b unless it had to
// be decoded (escapes, invalid UTF-8): member must not keep key beyond the
// call (strings.Clone it to keep it). When b is not a valid object, Members returns
// an error, possibly after calling member for the members before the fault.
func Members(b []byte, member func(key string, val []byte)) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ErrNotObject
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return ErrSyntax
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
			return ErrSyntax
		}
		i = skipWS(b, i+1)
		vEnd, err := valueEnd(b, i)
		if err != nil {
			return err
		}
		member(key, b[i:vEnd])
		i = skipWS(b, vEnd)
		if i >= len(b) {
			return ErrSyntax
		}
		if b[i] == '}' {
			return trailing(b, i+1)
		}
		if b[i] != ',' {
			return ErrSyntax
		}
		i = skipWS(b, i+1)
	}
}

// decodeKey decodes a member name with escapes. It is a function of its own
// so that only this rare path pays for the string escaping to the heap: in
// Members the variable made every member of every event allocate.
func decodeKey(raw []byte) (string, error) {
	var key string
	if json.Unmarshal(raw, &key) != nil {
		return "", ErrSyntax // a bad escape
	}
	return key, nil
}

func trailing(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return ErrSyntax
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
				return 0, false, ErrSyntax
			}
		}
	}
	return 0, false, ErrSyntax
}

// valueEnd returns the index after the JSON value starting at b[i]. Nested
// values are checked with encoding/json (they are rare in events' hot
// fields and only need to be valid); scalars are checked here.
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, ErrSyntax
	}
	switch c := b[i]; {
	case c == '"':
		end, escaped, err := stringEnd(b, i)
		if err == nil && escaped && !json.Valid(b[i:end]) {
			return 0, ErrSyntax // a bad escape
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
						return 0, ErrSyntax
					}
					return j + 1, nil
				}
			}
		}
		return 0, ErrSyntax
	default:
		j := i
		for j < len(b) && !strings.ContainsRune(" \t\n\r,}]", rune(b[j])) {
			j++
		}
		if j == i || !json.Valid(b[i:j]) {
			return 0, ErrSyntax
		}
		return j, nil
	}
}
