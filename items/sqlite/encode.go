package sqlite

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tallyhq/tally/items"
)

// The stored form of an item is a JSON object of DynamoDB AttributeValues:
// {"PK":{"S":"IMAGE#…"},"n":{"N":"12.5"},"b":{"B":"AQID"},"ok":{"BOOL":true},
// "x":{"NULL":true},"l":{"L":[…]},"m":{"M":{…}}}. It keeps every type
// apart (a number never turns into a string), keeps numbers as exact
// decimal text, and is what `aws dynamodb` prints, so a dump is readable
// with the tools people already know.

// encodeItem appends the stored form of a canonical item. Keys are sorted
// so equal items encode equally.
func encodeItem(buf []byte, it items.Item) []byte {
	keys := make([]string, 0, len(it))
	for k := range it {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k)
		buf = append(buf, ':')
		buf = appendValue(buf, it[k])
	}
	return append(buf, '}')
}

func appendValue(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, `{"NULL":true}`...)
	case bool:
		if x {
			return append(buf, `{"BOOL":true}`...)
		}
		return append(buf, `{"BOOL":false}`...)
	case string:
		buf = append(buf, `{"S":`...)
		return append(appendString(buf, x), '}')
	case items.Number:
		buf = append(buf, `{"N":"`...)
		return append(append(buf, x...), `"}`...)
	case []byte:
		buf = append(buf, `{"B":"`...)
		buf = base64.StdEncoding.AppendEncode(buf, x)
		return append(buf, `"}`...)
	case []any:
		buf = append(buf, `{"L":[`...)
		for i, e := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendValue(buf, e)
		}
		return append(buf, "]}"...)
	case map[string]any:
		buf = append(buf, `{"M":`...)
		return append(encodeItem(buf, x), '}')
	}
	// Unreachable for canonical values; store NULL rather than corrupt JSON.
	return append(buf, `{"NULL":true}`...)
}

// appendString appends s as a JSON string (s is valid UTF-8).
func appendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			continue
		}
		if c >= utf8.RuneSelf {
			continue // multi-byte UTF-8 is valid JSON as is
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// decodeItem parses the stored form back into a canonical item. It is a
// small hand-written parser: reads decode every returned item, and
// encoding/json's generic path was most of a query's time.
func decodeItem(data []byte) (items.Item, error) {
	d := &decoder{b: data}
	m, err := d.object(0)
	if err == nil {
		d.ws()
		if d.i != len(d.b) {
			err = d.fail("trailing data")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("decode stored item: %w", err)
	}
	return m, nil
}

type decoder struct {
	b []byte
	i int
}

func (d *decoder) fail(msg string) error { return fmt.Errorf("%s at offset %d", msg, d.i) }

func (d *decoder) ws() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\n' || d.b[d.i] == '\t' || d.b[d.i] == '\r') {
		d.i++
	}
}

func (d *decoder) eat(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *decoder) literal(s string) bool {
	d.ws()
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// str parses a JSON string.
func (d *decoder) str() (string, error) {
	if !d.eat('"') {
		return "", d.fail("expected a string")
	}
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			s := string(d.b[start:d.i])
			d.i++
			return s, nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", d.fail("control character in string")
		}
		d.i++
	}
	return "", d.fail("unterminated string")
}

// escaped finishes a string that holds escapes, from its start.
func (d *decoder) escaped(start int) (string, error) {
	buf := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(buf), nil
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			break
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					d.i += 2
					r2, ok := d.hex4()
					if !ok {
						return "", d.fail("bad \\u escape")
					}
					r = utf16.DecodeRune(r, r2)
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", d.fail("bad escape")
		}
	}
	return "", d.fail("unterminated string")
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
	d.i += 4
	return rune(n), err == nil
}

// object parses {"name": AttributeValue, …}.
func (d *decoder) object(depth int) (map[string]any, error) {
	if depth > items.MaxDepth+1 {
		return nil, d.fail("nested too deeply")
	}
	if !d.eat('{') {
		return nil, d.fail("expected an object")
	}
	m := map[string]any{}
	if d.eat('}') {
		return m, nil
	}
	for {
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if !d.eat(':') {
			return nil, d.fail("expected ':'")
		}
		if m[k], err = d.value(depth); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if d.eat('}') {
			return m, nil
		}
		if !d.eat(',') {
			return nil, d.fail("expected ',' or '}'")
		}
	}
}

// value parses one AttributeValue: {"S":…}, {"N":…}, {"B":…}, {"BOOL":…},
// {"NULL":true}, {"L":[…]} or {"M":{…}}.
func (d *decoder) value(depth int) (any, error) {
	if !d.eat('{') {
		return nil, d.fail("expected an AttributeValue")
	}
	typ, err := d.str()
	if err != nil {
		return nil, err
	}
	if !d.eat(':') {
		return nil, d.fail("expected ':'")
	}
	var v any
	switch typ {
	case "S":
		v, err = d.str()
	case "N":
		var s string
		s, err = d.str()
		v = items.Number(s)
	case "B":
		var s string
		if s, err = d.str(); err == nil {
			v, err = base64.StdEncoding.DecodeString(s)
		}
	case "BOOL":
		switch {
		case d.literal("true"):
			v = true
		case d.literal("false"):
			v = false
		default:
			err = d.fail("expected a boolean")
		}
	case "NULL":
		if !d.literal("true") {
			err = d.fail("expected true")
		}
	case "L":
		if !d.eat('[') {
			return nil, d.fail("expected a list")
		}
		l := []any{}
		if !d.eat(']') {
			for {
				e, err := d.value(depth + 1)
				if err != nil {
					return nil, err
				}
				l = append(l, e)
				if d.eat(']') {
					break
				}
				if !d.eat(',') {
					return nil, d.fail("expected ',' or ']'")
				}
			}
		}
		v = l
	case "M":
		v, err = d.object(depth + 1)
	default:
		err = d.fail(fmt.Sprintf("unknown type %q", typ))
	}
	if err != nil {
		return nil, err
	}
	if !d.eat('}') {
		return nil, d.fail("expected '}' after a value")
	}
	return v, nil
}
