package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Kind is the type of a metadata value.
type Kind uint8

// The metadata value kinds.
const (
	KindString Kind = iota + 1
	KindNumber
	KindBool
)

// Value is one metadata value read in place by MetaField, so filters can
// test records without building maps or boxing values. Its string bytes
// alias the segment: use it before Close (String copies).
type Value struct {
	kind Kind
	str  []byte
	num  float64
	b    bool
}

// Kind is the value's type.
func (v Value) Kind() Kind { return v.kind }

// String returns a string value (a copy), or "" for other kinds.
func (v Value) String() string { return string(v.str) }

// Float returns a number value, or 0 for other kinds.
func (v Value) Float() float64 { return v.num }

// Bool returns a bool value, or false for other kinds.
func (v Value) Bool() bool { return v.b }

// Any returns the value as Meta(i) would: string, float64 or bool.
func (v Value) Any() any {
	switch v.kind {
	case KindString:
		return string(v.str)
	case KindNumber:
		return v.num
	case KindBool:
		return v.b
	}
	return nil
}

// Equal reports whether v equals x, a filter operand of type string, bool,
// float64, float32 or any Go integer (numbers compare as float64). It does
// not allocate. Values of different kinds are never equal.
func (v Value) Equal(x any) bool {
	switch y := x.(type) {
	case string:
		return v.kind == KindString && string(v.str) == y
	case bool:
		return v.kind == KindBool && v.b == y
	}
	f, ok := toFloat(x)
	return ok && v.kind == KindNumber && v.num == f
}

func toFloat(x any) (float64, bool) {
	switch y := x.(type) {
	case float64:
		return y, true
	case float32:
		return float64(y), true
	case int:
		return float64(y), true
	case int8:
		return float64(y), true
	case int16:
		return float64(y), true
	case int32:
		return float64(y), true
	case int64:
		return float64(y), true
	case uint:
		return float64(y), true
	case uint8:
		return float64(y), true
	case uint16:
		return float64(y), true
	case uint32:
		return float64(y), true
	case uint64:
		return float64(y), true
	}
	return 0, false
}

// fieldIter walks the fields of one encoded metadata record.
type fieldIter struct{ b []byte }

var errMeta = errors.New("malformed field")

// next decodes one field. The caller has checked len(it.b) > 0.
func (it *fieldIter) next() (key uint64, v Value, err error) {
	key, n := binary.Uvarint(it.b)
	if n <= 0 || n >= len(it.b) {
		return 0, v, errMeta
	}
	kind, rest := it.b[n], it.b[n+1:]
	switch kind {
	case metaString:
		l, m := binary.Uvarint(rest)
		if m <= 0 || l > uint64(len(rest)-m) {
			return 0, v, errMeta
		}
		v = Value{kind: KindString, str: rest[m : m+int(l) : m+int(l)]}
		rest = rest[m+int(l):]
	case metaNumber:
		if len(rest) < 8 {
			return 0, v, errMeta
		}
		v = Value{kind: KindNumber, num: math.Float64frombits(le.Uint64(rest))}
		rest = rest[8:]
	case metaFalse, metaTrue:
		v = Value{kind: KindBool, b: kind == metaTrue}
	default:
		return 0, v, fmt.Errorf("unknown value kind %d", kind)
	}
	it.b = rest
	return key, v, nil
}

// checkMeta validates one record: well-formed fields, known keys in strictly
// increasing order, finite numbers. Parse runs it on every record, so the
// accessors never meet a malformed one.
func checkMeta(rec []byte, nkeys uint64) error {
	it := fieldIter{rec}
	first := true
	var prev uint64
	for len(it.b) > 0 {
		key, v, err := it.next()
		if err != nil {
			return err
		}
		if key >= nkeys {
			return fmt.Errorf("key index %d, dictionary has %d", key, nkeys)
		}
		if !first && key <= prev {
			return fmt.Errorf("key index %d after %d", key, prev)
		}
		if v.kind == KindNumber && (math.IsNaN(v.num) || math.IsInf(v.num, 0)) {
			return fmt.Errorf("number %v is not finite", v.num)
		}
		first, prev = false, key
	}
	return nil
}

// Meta returns record i's metadata as a new map (string, float64 and bool
// values), or nil if the record has none. (On a damaged segment opened with
// SkipVerify it returns the fields before the damage.)
func (s *Segment) Meta(i int) map[string]any {
	it := fieldIter{s.meta.get(i)}
	if len(it.b) == 0 {
		return nil
	}
	m := make(map[string]any, 4)
	for len(it.b) > 0 {
		key, v, err := it.next()
		if err != nil || key >= uint64(s.metaKeys.n) { // only if not verified
			break
		}
		m[string(s.metaKeys.get(int(key)))] = v.Any()
	}
	return m
}

// MetaField returns one metadata field of record i without allocating: the
// name is found by binary search in the key dictionary, then the record's
// fields are scanned (they are sorted by key, so the scan stops early).
func (s *Segment) MetaField(i int, name string) (Value, bool) {
	k, ok := s.metaKeys.search(name)
	if !ok {
		return Value{}, false
	}
	want := uint64(k)
	it := fieldIter{s.meta.get(i)}
	for len(it.b) > 0 {
		key, v, err := it.next()
		if err != nil || key > want {
			break
		}
		if key == want {
			return v, true
		}
	}
	return Value{}, false
}

// MetaKeys returns the distinct metadata field names used in the segment,
// sorted.
func (s *Segment) MetaKeys() []string {
	out := make([]string, s.metaKeys.n)
	for i := range out {
		out[i] = string(s.metaKeys.get(i))
	}
	return out
}
