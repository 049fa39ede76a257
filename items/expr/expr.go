// Package expr parses and evaluates DynamoDB condition and update
// expressions, so the embedded items adapter accepts exactly the requests
// DynamoDB accepts and answers them the same way.
//
// Conditions: = <> < <= > >=, BETWEEN … AND …, IN (…), AND, OR, NOT (NOT
// binds tighter than AND, AND tighter than OR), parentheses, and the
// functions attribute_exists, attribute_not_exists, attribute_type,
// begins_with, contains and size. Updates: SET (with + and -, if_not_exists
// and list_append), REMOVE and ADD (numbers only). DELETE is rejected: it
// works on set types, which Tally does not have.
//
// Paths are names joined by dots with [n] list indexes (a.b[2].c); a #name
// placeholder stands for one name, a :value placeholder for one value. As in
// DynamoDB, a bare name that is a reserved word, an undefined placeholder and
// a placeholder the request never uses are all errors. Every error wraps
// tally.ErrInvalidArgument and says where the problem is.
//
// Values are in the canonical form of items.Normalize (numbers are
// items.Number). Comparisons follow DynamoDB: strings and binary by bytes,
// numbers numerically, and operands of different types never compare true.
package expr

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// MaxExprBytes is DynamoDB's limit on the length of one expression.
const MaxExprBytes = 4096

// Limits that keep a hostile expression cheap.
const (
	maxInOperands = 100 // DynamoDB's limit on IN (…)
	maxNesting    = 256
)

// Error is a malformed or inconsistent expression. It wraps
// tally.ErrInvalidArgument.
type Error struct {
	Kind string // "condition" or "update"
	Pos  int    // 1-based byte position in the expression; 0 when not positional
	Msg  string
}

func (e *Error) Error() string {
	if e.Pos > 0 {
		return fmt.Sprintf("invalid %s expression: %s at position %d", e.Kind, e.Msg, e.Pos)
	}
	return fmt.Sprintf("invalid %s expression: %s", e.Kind, e.Msg)
}

// Unwrap makes every expression error a tally.ErrInvalidArgument.
func (e *Error) Unwrap() error { return tally.ErrInvalidArgument }

// Env holds the placeholders one request's expressions share (DynamoDB's
// ExpressionAttributeNames and ExpressionAttributeValues) and records which
// ones they use, so Done can reject the unused ones as DynamoDB does.
type Env struct {
	names  map[string]string
	values map[string]any
	usedN  map[string]bool
	usedV  map[string]bool
}

// NewEnv checks the placeholders (#names map to non-empty attribute names,
// :values hold supported values) and normalizes the values.
func NewEnv(names map[string]string, values map[string]any) (*Env, error) {
	e := &Env{
		names:  make(map[string]string, len(names)),
		values: make(map[string]any, len(values)),
		usedN:  map[string]bool{},
		usedV:  map[string]bool{},
	}
	for k, v := range names {
		if len(k) < 2 || k[0] != '#' || !isWord(k[1:]) {
			return nil, &Error{Kind: "placeholder", Msg: fmt.Sprintf("name placeholder %q must be # followed by letters, digits or _", k)}
		}
		if v == "" {
			return nil, &Error{Kind: "placeholder", Msg: fmt.Sprintf("name placeholder %s maps to an empty name", k)}
		}
		e.names[k] = v
	}
	for k, v := range values {
		if len(k) < 2 || k[0] != ':' || !isWord(k[1:]) {
			return nil, &Error{Kind: "placeholder", Msg: fmt.Sprintf("value placeholder %q must be : followed by letters, digits or _", k)}
		}
		nv, err := items.Normalize(v)
		if err != nil {
			return nil, fmt.Errorf("value placeholder %s: %w", k, err)
		}
		e.values[k] = nv
	}
	return e, nil
}

// Done reports placeholders that no expression parsed with e used.
func (e *Env) Done() error {
	var unused []string
	for k := range e.names {
		if !e.usedN[k] {
			unused = append(unused, k)
		}
	}
	for k := range e.values {
		if !e.usedV[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) == 0 {
		return nil
	}
	sort.Strings(unused)
	return &Error{Kind: "placeholder", Msg: "placeholders defined but not used in any expression: " + strings.Join(unused, ", ")}
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func makeSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// ---- lexer ----

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // name, keyword or function
	tName           // #name
	tValue          // :value
	tNumber         // list index
	tPunct
)

type token struct {
	kind tokKind
	text string
	pos  int // 0-based
}

func (t token) String() string {
	if t.kind == tEOF {
		return "end of expression"
	}
	return fmt.Sprintf("%q", t.text)
}

func lex(kind, src string) ([]token, error) {
	if len(src) > MaxExprBytes {
		return nil, &Error{Kind: kind, Msg: fmt.Sprintf("expression is %d bytes, more than %d", len(src), MaxExprBytes)}
	}
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || c == ':':
			j := i + 1
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, &Error{Kind: kind, Pos: i + 1, Msg: fmt.Sprintf("%q must be followed by a placeholder name", c)}
			}
			k := tName
			if c == ':' {
				k = tValue
			}
			toks = append(toks, token{k, src[i:j], i})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			toks = append(toks, token{tNumber, src[i:j], i})
			i = j
		case isWordByte(c):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			toks = append(toks, token{tIdent, src[i:j], i})
			i = j
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch {
			case two == "<>" || two == "<=" || two == ">=":
				toks = append(toks, token{tPunct, two, i})
				i += 2
			case strings.IndexByte("()[],.=<>+-", c) >= 0:
				toks = append(toks, token{tPunct, src[i : i+1], i})
				i++
			default:
				return nil, &Error{Kind: kind, Pos: i + 1, Msg: fmt.Sprintf("unexpected character %q", rune(c))}
			}
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src)}), nil
}

// ---- parser shared by conditions and updates ----

type parser struct {
	kind  string
	toks  []token
	i     int
	env   *Env
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekN(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &Error{Kind: p.kind, Pos: t.pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) isKeyword(s string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, s)
}

func (p *parser) expect(s string) error {
	if !p.isPunct(s) {
		return p.errAt(p.peek(), "expected %q, found %s", s, p.peek())
	}
	p.next()
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxNesting {
		return p.errAt(p.peek(), "expression nested too deeply")
	}
	return nil
}

// path parses a document path: name or #name, then .name, .#name or [n].
func (p *parser) path() (path, error) {
	var pa path
	elemName := func() error {
		t := p.next()
		switch t.kind {
		case tIdent:
			if reservedWords[strings.ToUpper(t.text)] {
				return p.errAt(t, "attribute name %q is a reserved word; use a #name placeholder", t.text)
			}
			pa = append(pa, elem{name: t.text})
		case tName:
			n, ok := p.env.names[t.text]
			if !ok {
				return p.errAt(t, "name placeholder %s is not defined", t.text)
			}
			p.env.usedN[t.text] = true
			pa = append(pa, elem{name: n})
		default:
			return p.errAt(t, "expected an attribute name, found %s", t)
		}
		return nil
	}
	if err := elemName(); err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isPunct("."):
			p.next()
			if err := elemName(); err != nil {
				return nil, err
			}
		case p.isPunct("["):
			p.next()
			t := p.next()
			if t.kind != tNumber {
				return nil, p.errAt(t, "expected a list index, found %s", t)
			}
			n := 0
			for _, c := range t.text {
				n = n*10 + int(c-'0')
				if n > 1<<30 {
					return nil, p.errAt(t, "list index %s is too large", t.text)
				}
			}
			pa = append(pa, elem{index: n, isIndex: true})
			if err := p.expect("]"); err != nil {
				return nil, err
			}
		default:
			return pa, nil
		}
	}
}

// value resolves a :value placeholder token.
func (p *parser) value(t token) (any, error) {
	v, ok := p.env.values[t.text]
	if !ok {
		return nil, p.errAt(t, "value placeholder %s is not defined", t.text)
	}
	p.env.usedV[t.text] = true
	return v, nil
}

// ---- paths ----

type elem struct {
	name    string
	index   int
	isIndex bool
}

type path []elem

func (pa path) String() string {
	var b strings.Builder
	for i, e := range pa {
		switch {
		case e.isIndex:
			fmt.Fprintf(&b, "[%d]", e.index)
		case i > 0:
			b.WriteString("." + e.name)
		default:
			b.WriteString(e.name)
		}
	}
	return b.String()
}

// resolve finds the value at pa in item; ok is false when it is absent.
func resolve(item map[string]any, pa path) (any, bool) {
	var cur any = item
	if item == nil {
		return nil, false
	}
	for _, e := range pa {
		if e.isIndex {
			l, ok := cur.([]any)
			if !ok || e.index >= len(l) {
				return nil, false
			}
			cur = l[e.index]
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[e.name]; !ok {
			return nil, false
		}
	}
	return cur, true
}
