package expr

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/tallyhq/tally/items"
)

// typeOf names a canonical value's DynamoDB type.
func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "NULL"
	case bool:
		return "BOOL"
	case string:
		return "S"
	case items.Number:
		return "N"
	case []byte:
		return "B"
	case []any:
		return "L"
	case map[string]any:
		return "M"
	}
	return "?"
}

// orderable reports whether < and friends apply to v (N, S and B).
func orderable(v any) bool {
	switch v.(type) {
	case string, items.Number, []byte:
		return true
	}
	return false
}

// order compares two values of one orderable type; ok is false otherwise.
func order(a, b any) (c int, ok bool) {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	case items.Number:
		if y, ok := b.(items.Number); ok {
			return x.Cmp(y), true
		}
	case []byte:
		if y, ok := b.([]byte); ok {
			return bytes.Compare(x, y), true
		}
	}
	return 0, false
}

// equal is DynamoDB equality: same type and same value, deeply.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string, items.Number, []byte:
		c, ok := order(a, b)
		return ok && c == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// size is DynamoDB's size(): bytes of a string or binary, elements of a
// list or map; other types have none.
func size(v any) (items.Number, bool) {
	var n int
	switch x := v.(type) {
	case string:
		n = len(x)
	case []byte:
		n = len(x)
	case []any:
		n = len(x)
	case map[string]any:
		n = len(x)
	default:
		return "", false
	}
	num, _, _ := items.NumberOf(n)
	return num, true
}

// deepCopy copies lists and maps so an update never aliases a placeholder
// value or the stored item.
func deepCopy(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	}
	return v
}

// contains is DynamoDB's contains(): a substring of a string, a
// subsequence of binary, an element of a list.
func contains(hay, needle any) bool {
	switch h := hay.(type) {
	case string:
		n, ok := needle.(string)
		return ok && utf8.ValidString(n) && strings.Contains(h, n)
	case []byte:
		n, ok := needle.([]byte)
		return ok && bytes.Contains(h, n)
	case []any:
		for _, e := range h {
			if equal(e, needle) {
				return true
			}
		}
	}
	return false
}
