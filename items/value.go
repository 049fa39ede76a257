package items

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally"
)

// Limits on values, DynamoDB's own, enforced by every adapter so that code
// written against the embedded store keeps working on AWS.
const (
	MaxPKBytes    = 2048 // a partition key value, UTF-8 bytes
	MaxSKBytes    = 1024 // a sort key value, UTF-8 bytes
	MaxDepth      = 32   // nesting of lists and maps
	MaxNumDigits  = 38   // significant digits of a number
	maxNumExpHigh = 125  // largest decimal exponent of a number's leading digit
	maxNumExpLow  = -130 // smallest
)

// Number is a number in decimal text, the way DynamoDB holds numbers: exact,
// up to 38 significant digits. Items may carry a Number on input to keep
// digits a float64 would lose; the expression engine and the adapters use it
// internally. Output items carry int64 or float64 (see Number.Value).
//
// A Number made by ParseNumber is canonical: no leading or trailing zeros,
// no "+", plain notation unless the exponent is extreme.
type Number string

// dec is a parsed number: (-1)^neg × coef × 10^exp, coef without leading or
// trailing zeros ("" for zero).
type dec struct {
	neg  bool
	coef string
	exp  int
}

// ParseNumber checks s as a DynamoDB number and returns its canonical form;
// malformed, too precise or out-of-range numbers are tally.ErrInvalidArgument.
func ParseNumber(s string) (Number, error) {
	d, err := parseDec(s)
	if err != nil {
		return "", err
	}
	return d.number()
}

func parseDec(s string) (dec, error) {
	var d dec
	orig := s
	bad := func() (dec, error) {
		return dec{}, fmt.Errorf("number %q is malformed: %w", truncate(orig, 40), tally.ErrInvalidArgument)
	}
	if s == "" {
		return bad()
	}
	if s[0] == '+' || s[0] == '-' {
		d.neg = s[0] == '-'
		s = s[1:]
	}
	var digits strings.Builder
	exp, sawDigit, sawDot := 0, false, false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			sawDigit = true
			if digits.Len() == 0 && c == '0' {
				if sawDot {
					exp--
				}
				continue
			}
			digits.WriteByte(c)
			if sawDot {
				exp--
			}
		case c == '.' && !sawDot:
			sawDot = true
		default:
			goto rest
		}
	}
rest:
	if !sawDigit {
		return bad()
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return bad()
		}
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || strings.HasPrefix(s[i+1:], "+-") || e > 10000 || e < -10000 {
			return bad()
		}
		exp += e
	}
	coef := digits.String()
	trimmed := strings.TrimRight(coef, "0")
	exp += len(coef) - len(trimmed)
	d.coef = trimmed
	d.exp = exp
	if d.coef == "" {
		d = dec{}
	}
	return d, nil
}

// adjExp is the decimal exponent of the leading digit.
func (d dec) adjExp() int { return d.exp + len(d.coef) - 1 }

func (d dec) number() (Number, error) {
	if d.coef == "" {
		return "0", nil
	}
	if len(d.coef) > MaxNumDigits {
		return "", fmt.Errorf("number has %d significant digits, more than %d: %w", len(d.coef), MaxNumDigits, tally.ErrInvalidArgument)
	}
	if a := d.adjExp(); a > maxNumExpHigh || a < maxNumExpLow {
		return "", fmt.Errorf("number magnitude 1e%d is out of range: %w", a, tally.ErrInvalidArgument)
	}
	var b strings.Builder
	if d.neg {
		b.WriteByte('-')
	}
	a := d.adjExp()
	switch {
	case a < -20 || a > 40:
		b.WriteByte(d.coef[0])
		if len(d.coef) > 1 {
			b.WriteByte('.')
			b.WriteString(d.coef[1:])
		}
		b.WriteString("E")
		b.WriteString(strconv.Itoa(a))
	case d.exp >= 0:
		b.WriteString(d.coef)
		b.WriteString(strings.Repeat("0", d.exp))
	case a >= 0:
		b.WriteString(d.coef[:a+1])
		b.WriteByte('.')
		b.WriteString(d.coef[a+1:])
	default:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -a-1))
		b.WriteString(d.coef)
	}
	return Number(b.String()), nil
}

// Cmp compares two numbers numerically: -1, 0 or +1. A malformed Number
// compares as zero.
func (n Number) Cmp(m Number) int {
	a, _ := parseDec(string(n))
	b, _ := parseDec(string(m))
	return cmpDec(a, b)
}

func cmpDec(a, b dec) int {
	sign := func(d dec) int {
		switch {
		case d.coef == "":
			return 0
		case d.neg:
			return -1
		}
		return 1
	}
	sa, sb := sign(a), sign(b)
	if sa != sb || sa == 0 {
		return cmpInt(sa, sb)
	}
	c := cmpInt(a.adjExp(), b.adjExp())
	if c == 0 {
		c = strings.Compare(a.coef, b.coef)
	}
	if sa < 0 {
		c = -c
	}
	return c
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Add returns n+m, exactly; a result DynamoDB could not hold (more than 38
// significant digits, out of range) is tally.ErrInvalidArgument.
func (n Number) Add(m Number) (Number, error) {
	a, err := parseDec(string(n))
	if err != nil {
		return "", err
	}
	b, err := parseDec(string(m))
	if err != nil {
		return "", err
	}
	if a.coef == "" {
		return b.number()
	}
	if b.coef == "" {
		return a.number()
	}
	lo := min(a.exp, b.exp)
	toInt := func(d dec) *big.Int {
		x, _ := new(big.Int).SetString(d.coef+strings.Repeat("0", d.exp-lo), 10)
		if d.neg {
			x.Neg(x)
		}
		return x
	}
	sum := new(big.Int).Add(toInt(a), toInt(b))
	s := sum.String()
	r, err := parseDec(s + "E" + strconv.Itoa(lo))
	if err != nil {
		return "", err
	}
	out, err := r.number()
	if err != nil {
		return "", fmt.Errorf("number overflow: %w", err)
	}
	return out, nil
}

// Neg returns -n.
func (n Number) Neg() Number {
	d, _ := parseDec(string(n))
	if d.coef != "" {
		d.neg = !d.neg
	}
	out, _ := d.number()
	return out
}

// Value converts n for output: int64 when it is integral and in range,
// float64 otherwise.
func (n Number) Value() any {
	d, err := parseDec(string(n))
	if err != nil {
		return float64(0)
	}
	if d.exp >= 0 && d.adjExp() < 19 {
		s := d.coef + strings.Repeat("0", d.exp)
		if d.neg {
			s = "-" + s
		}
		if d.coef == "" {
			return int64(0)
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
	}
	f, _ := strconv.ParseFloat(string(n), 64)
	return f
}

// Int64 returns n truncated to an integer and whether it fits in an int64.
func (n Number) Int64() (int64, bool) {
	d, err := parseDec(string(n))
	if err != nil {
		return 0, false
	}
	if d.coef == "" {
		return 0, true
	}
	var s string
	switch {
	case d.exp >= 0:
		if d.adjExp() > 18 {
			return 0, false
		}
		s = d.coef + strings.Repeat("0", d.exp)
	case d.adjExp() < 0:
		return 0, true
	default:
		s = d.coef[:d.adjExp()+1]
	}
	if d.neg {
		s = "-" + s
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return i, err == nil
}

// NumberOf converts a Go number (any integer or float type, Number or
// json.Number) to a canonical Number; ok is false for other types.
func NumberOf(v any) (n Number, ok bool, err error) {
	var s string
	switch x := v.(type) {
	case int:
		s = strconv.FormatInt(int64(x), 10)
	case int8:
		s = strconv.FormatInt(int64(x), 10)
	case int16:
		s = strconv.FormatInt(int64(x), 10)
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case int64:
		s = strconv.FormatInt(x, 10)
	case uint:
		s = strconv.FormatUint(uint64(x), 10)
	case uint8:
		s = strconv.FormatUint(uint64(x), 10)
	case uint16:
		s = strconv.FormatUint(uint64(x), 10)
	case uint32:
		s = strconv.FormatUint(uint64(x), 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	case float32:
		return floatNumber(float64(x), 32)
	case float64:
		return floatNumber(x, 64)
	case Number:
		s = string(x)
	case json.Number:
		s = string(x)
	default:
		return "", false, nil
	}
	n, err = ParseNumber(s)
	return n, true, err
}

func floatNumber(f float64, bits int) (Number, bool, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", true, fmt.Errorf("number %v is not finite: %w", f, tally.ErrInvalidArgument)
	}
	n, err := ParseNumber(strconv.FormatFloat(f, 'g', -1, bits))
	return n, true, err
}

// Normalize returns a deep copy of v in the canonical form every adapter and
// the expression engine work on: nil, bool, string, []byte, Number, []any
// and map[string]any. Other slices and string-keyed maps are converted; any
// other type, invalid UTF-8, a bad number or nesting deeper than MaxDepth is
// tally.ErrInvalidArgument.
func Normalize(v any) (any, error) { return normalize(v, 0) }

func normalize(v any, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("value nested deeper than %d levels: %w", MaxDepth, tally.ErrInvalidArgument)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return x, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, fmt.Errorf("string %q is not valid UTF-8: %w", truncate(x, 40), tally.ErrInvalidArgument)
		}
		return x, nil
	case []byte:
		return append([]byte{}, x...), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = normalize(e, depth+1); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return out, nil
	case map[string]any:
		return normalizeMap(x, depth)
	case Item:
		return normalizeMap(x, depth)
	}
	if n, ok, err := NumberOf(v); ok {
		if err != nil {
			return nil, err
		}
		return n, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, fmt.Errorf("nil %T: %w", v, tally.ErrInvalidArgument)
		}
		out := make([]any, rv.Len())
		for i := range out {
			var err error
			if out[i], err = normalize(rv.Index(i).Interface(), depth+1); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			m[it.Key().String()] = it.Value().Interface()
		}
		return normalizeMap(m, depth)
	case reflect.String:
		return normalize(rv.String(), depth)
	case reflect.Bool:
		return rv.Bool(), nil
	}
	return nil, fmt.Errorf("unsupported value type %T: %w", v, tally.ErrInvalidArgument)
}

func normalizeMap(m map[string]any, depth int) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, e := range m {
		if !utf8.ValidString(k) {
			return nil, fmt.Errorf("attribute name %q is not valid UTF-8: %w", truncate(k, 40), tally.ErrInvalidArgument)
		}
		v, err := normalize(e, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// Output converts a canonical value for callers: every Number becomes int64
// or float64 (Number.Value). Lists and maps are converted in place.
func Output(v any) any {
	switch x := v.(type) {
	case Number:
		return x.Value()
	case []any:
		for i, e := range x {
			x[i] = Output(e)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = Output(e)
		}
	case Item:
		for k, e := range x {
			x[k] = Output(e)
		}
	}
	return v
}

// OutputItem converts a canonical item for callers, in place (see Output).
func OutputItem(it Item) Item {
	Output(it)
	return it
}

// CheckKey reports a key DynamoDB would reject (empty or oversized parts)
// as tally.ErrInvalidArgument.
func CheckKey(k Key) error {
	switch {
	case k.PK == "":
		return fmt.Errorf("key: empty %s: %w", AttrPK, tally.ErrInvalidArgument)
	case k.SK == "":
		return fmt.Errorf("key: empty %s: %w", AttrSK, tally.ErrInvalidArgument)
	case len(k.PK) > MaxPKBytes:
		return fmt.Errorf("key: %s is %d bytes, more than %d: %w", AttrPK, len(k.PK), MaxPKBytes, tally.ErrInvalidArgument)
	case len(k.SK) > MaxSKBytes:
		return fmt.Errorf("key: %s is %d bytes, more than %d: %w", AttrSK, len(k.SK), MaxSKBytes, tally.ErrInvalidArgument)
	case !utf8.ValidString(k.PK) || !utf8.ValidString(k.SK):
		return fmt.Errorf("key: not valid UTF-8: %w", tally.ErrInvalidArgument)
	}
	return nil
}

// PrepareItem validates an item for a write and returns its canonical copy:
// PK and SK present non-empty strings, every index key attribute present on
// it a non-empty string (DynamoDB declares them as strings), supported value
// types, at most MaxItemBytes. Problems are tally.ErrInvalidArgument.
func PrepareItem(it Item, indexes []Index) (Item, error) {
	if it == nil {
		return nil, fmt.Errorf("nil item: %w", tally.ErrInvalidArgument)
	}
	for _, a := range []string{AttrPK, AttrSK} {
		v, ok := it[a]
		if !ok {
			return nil, fmt.Errorf("item has no %s: %w", a, tally.ErrInvalidArgument)
		}
		if _, ok := v.(string); !ok {
			return nil, fmt.Errorf("item %s is %T, not a string: %w", a, v, tally.ErrInvalidArgument)
		}
	}
	if err := CheckKey(it.Key()); err != nil {
		return nil, fmt.Errorf("item: %w", err)
	}
	m, err := normalizeMap(it, 0)
	if err != nil {
		return nil, fmt.Errorf("item %s/%s: %w", it.Key().PK, it.Key().SK, err)
	}
	out := Item(m)
	if err := CheckItem(out, indexes); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckItem validates an item already in canonical form (the result of an
// update, say): keys, index attributes and size, as PrepareItem.
func CheckItem(it Item, indexes []Index) error {
	k := it.Key()
	if err := CheckKey(k); err != nil {
		return fmt.Errorf("item: %w", err)
	}
	for name := range it {
		if name == "" {
			return fmt.Errorf("item %s/%s: empty attribute name: %w", k.PK, k.SK, tally.ErrInvalidArgument)
		}
	}
	for _, ix := range indexes {
		for _, a := range []string{ix.PK, ix.SK} {
			if a == "" {
				continue
			}
			v, ok := it[a]
			if !ok {
				continue
			}
			if s, isStr := v.(string); !isStr || s == "" {
				return fmt.Errorf("item %s/%s: %s (a key of index %s) must be a non-empty string, not %s: %w",
					k.PK, k.SK, a, ix.Name, describe(v), tally.ErrInvalidArgument)
			}
		}
	}
	if n := ItemSize(it); n > MaxItemBytes {
		return fmt.Errorf("item %s/%s is %d bytes, more than %d: %w", k.PK, k.SK, n, MaxItemBytes, tally.ErrInvalidArgument)
	}
	return nil
}

func describe(v any) string {
	if s, ok := v.(string); ok && s == "" {
		return "an empty string"
	}
	return fmt.Sprintf("%T", v)
}

// ItemSize estimates an item's size the way DynamoDB counts it: attribute
// names plus values (strings and binary by length, numbers by digits, one
// byte for bool and null, three plus one per element for lists and maps).
func ItemSize(it Item) int {
	n := 0
	for k, v := range it {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []byte:
		return len(x)
	case Number:
		d, _ := parseDec(string(x))
		return (len(d.coef)+1)/2 + 1
	case []any:
		n := 3
		for _, e := range x {
			n += 1 + valueSize(e)
		}
		return n
	case map[string]any:
		n := 3
		for k, e := range x {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 1
}

// TTLOf returns the expiry (Unix seconds) an item's time_to_live attribute
// holds; ok is false when it has none or it is not a number (DynamoDB
// ignores such items for TTL).
func TTLOf(it Item) (secs int64, ok bool) {
	var n Number
	switch x := it[AttrTTL].(type) {
	case Number:
		n = x
	default:
		var isNum bool
		var err error
		if n, isNum, err = NumberOf(x); !isNum || err != nil {
			return 0, false
		}
	}
	d, _ := parseDec(string(n))
	if d.neg && d.coef != "" {
		i, fits := n.Int64()
		if !fits {
			return math.MinInt64, true
		}
		if d.exp < 0 { // floor
			i--
		}
		return i, true
	}
	i, fits := n.Int64()
	if !fits {
		return 0, false // beyond any clock: never expires
	}
	return i, true
}

// Expired reports whether an item's TTL has passed at now: its
// time_to_live is a number of Unix seconds less than now's. Expired items
// are invisible to reads and absent to conditions.
func Expired(it Item, now time.Time) bool {
	secs, ok := TTLOf(it)
	return ok && secs < now.Unix()
}

// IndexByName returns the named index; "" names the table itself (ok true,
// zero Index). An unknown name is tally.ErrInvalidArgument.
func IndexByName(indexes []Index, name string) (Index, error) {
	if name == "" {
		return Index{PK: AttrPK, SK: AttrSK}, nil
	}
	for _, ix := range indexes {
		if ix.Name == name {
			return ix, nil
		}
	}
	names := make([]string, len(indexes))
	for i, ix := range indexes {
		names[i] = ix.Name
	}
	sort.Strings(names)
	return Index{}, fmt.Errorf("unknown index %q (have %s): %w", name, strings.Join(names, ", "), tally.ErrInvalidArgument)
}

// CheckQuery applies a query's argument rules (a partition key, a
// non-negative limit, a sort-key condition only on an index with a sort key
// and with its values) so every adapter refuses the same queries with
// tally.ErrInvalidArgument. ix is the queried index (the table's own key
// for Index "").
func CheckQuery(q Query, ix Index) error {
	switch {
	case q.PK == "":
		return fmt.Errorf("empty partition key: %w", tally.ErrInvalidArgument)
	case q.Limit < 0:
		return fmt.Errorf("negative limit %d: %w", q.Limit, tally.ErrInvalidArgument)
	case q.SK.Op != SKAny && ix.SK == "":
		return fmt.Errorf("index %s has no sort key to narrow: %w", ix.Name, tally.ErrInvalidArgument)
	case q.SK.Op != SKAny && q.SK.Value == "":
		return fmt.Errorf("empty sort-key value: %w", tally.ErrInvalidArgument)
	case q.SK.Op == SKBetween && q.SK.Value2 == "":
		return fmt.Errorf("empty sort-key upper bound: %w", tally.ErrInvalidArgument)
	case len(q.PK) > MaxPKBytes:
		return fmt.Errorf("partition key is %d bytes, more than %d: %w", len(q.PK), MaxPKBytes, tally.ErrInvalidArgument)
	}
	return CheckSKCond(q.SK)
}

// CheckSKCond validates a sort-key condition.
func CheckSKCond(c SKCond) error {
	switch c.Op {
	case SKAny:
		return nil
	case SKEqual, SKLess, SKLessEq, SKGreater, SKGreaterEq, SKBeginsWith:
	case SKBetween:
		if c.Value > c.Value2 {
			return fmt.Errorf("sort key between %q and %q: lower bound above upper: %w", c.Value, c.Value2, tally.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("unknown sort-key operator %q: %w", c.Op, tally.ErrInvalidArgument)
	}
	if !utf8.ValidString(c.Value) || !utf8.ValidString(c.Value2) {
		return fmt.Errorf("sort-key condition is not valid UTF-8: %w", tally.ErrInvalidArgument)
	}
	return nil
}

// Matches reports whether sort-key value sk satisfies c (byte order).
func (c SKCond) Matches(sk string) bool {
	switch c.Op {
	case SKEqual:
		return sk == c.Value
	case SKLess:
		return sk < c.Value
	case SKLessEq:
		return sk <= c.Value
	case SKGreater:
		return sk > c.Value
	case SKGreaterEq:
		return sk >= c.Value
	case SKBeginsWith:
		return strings.HasPrefix(sk, c.Value)
	case SKBetween:
		return c.Value <= sk && sk <= c.Value2
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Int64Of reads an integer attribute as returned by any adapter (int64,
// int, an integral float64, or a Number), so callers need no type switch of
// their own.
func Int64Of(v any) (int64, bool) {
	n, ok, err := NumberOf(v)
	if !ok || err != nil {
		return 0, false
	}
	return n.Int64()
}
