package num

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/shopspring/decimal"
)

// MarshalJSON writes d as a JSON string of its String text ("12.5"), as
// decimal.Decimal does by default: a JavaScript client reading a JSON number
// would round it to a float64.
func (d Dec) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 24)
	b = append(b, '"')
	b, _ = d.AppendText(b)
	return append(b, '"'), nil
}

// UnmarshalJSON reads what ParseJSON reads, except that null leaves d
// unchanged, as encoding/json expects of an Unmarshaler (and as
// decimal.Decimal does).
func (d *Dec) UnmarshalJSON(raw []byte) error {
	if string(raw) == "null" {
		return nil
	}
	v, err := ParseJSON(raw)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// The binary encoding starts with a tag byte.
const (
	tagMicro   = 0 // then the millionths as a varint
	tagDecimal = 1 // then decimal.Decimal's MarshalBinary
)

// MarshalBinary encodes d for encoding/gob and other binary formats (a
// snapshot of an engine's state): a value on the int64 path as a tag byte
// and a varint (2 bytes for 0), others through decimal.Decimal's
// MarshalBinary.
func (d Dec) MarshalBinary() ([]byte, error) {
	if d.big == nil {
		return binary.AppendVarint([]byte{tagMicro}, d.micro), nil
	}
	b, err := d.big.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append([]byte{tagDecimal}, b...), nil
}

// UnmarshalBinary decodes what MarshalBinary encoded. The decimal path is
// subject to decimal.MaxDecodeExponent, as decimal's own UnmarshalBinary.
func (d *Dec) UnmarshalBinary(data []byte) error {
	if len(data) == 0 {
		return errors.New("num: decoding binary: no data")
	}
	switch data[0] {
	case tagMicro:
		m, n := binary.Varint(data[1:])
		if n <= 0 || 1+n != len(data) || m == math.MinInt64 {
			return fmt.Errorf("num: decoding binary %x: bad millionths", data)
		}
		*d = Dec{micro: m}
	case tagDecimal:
		var x decimal.Decimal
		if err := x.UnmarshalBinary(data[1:]); err != nil {
			return fmt.Errorf("num: %w", err)
		}
		*d = fromDecimal(x)
	default:
		return fmt.Errorf("num: decoding binary %x: unknown tag", data)
	}
	return nil
}
