package expr

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tallyhq/tally/items"
)

// UpdateExpr is a parsed update expression. A nil *UpdateExpr (from an empty
// expression) changes nothing.
type UpdateExpr struct {
	sets    []setAction
	removes []path
	adds    []addAction
}

type setAction struct {
	path path
	val  setExpr
	pos  int
}

type addAction struct {
	path path
	val  items.Number
	pos  int
}

// setExpr is the right-hand side of a SET action.
type setExpr interface {
	value(item map[string]any) (any, error)
}

type (
	operandExpr struct {
		o   operand
		pos int
	}
	arithExpr struct {
		op   byte
		l, r setExpr
		pos  int
	}
	ifNotExistsExpr struct {
		path path
		def  setExpr
	}
	listAppendExpr struct {
		l, r setExpr
		pos  int
	}
)

func updateErr(pos int, format string, args ...any) error {
	return &Error{Kind: "update", Pos: pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (x operandExpr) value(it map[string]any) (any, error) {
	v, ok := x.o.get(it)
	if !ok {
		return nil, updateErr(x.pos, "the attribute %s does not exist in the item", x.o.path)
	}
	return v, nil
}

func (x arithExpr) value(it map[string]any) (any, error) {
	a, err := x.l.value(it)
	if err != nil {
		return nil, err
	}
	b, err := x.r.value(it)
	if err != nil {
		return nil, err
	}
	an, ok1 := a.(items.Number)
	bn, ok2 := b.(items.Number)
	if !ok1 || !ok2 {
		return nil, updateErr(x.pos, "operands of %c must be numbers, not %s and %s", x.op, typeOf(a), typeOf(b))
	}
	if x.op == '-' {
		bn = bn.Neg()
	}
	n, err := an.Add(bn)
	if err != nil {
		return nil, fmt.Errorf("invalid update expression: %c at position %d: %w", x.op, x.pos+1, err)
	}
	return n, nil
}

func (x ifNotExistsExpr) value(it map[string]any) (any, error) {
	if v, ok := resolve(it, x.path); ok {
		return v, nil
	}
	return x.def.value(it)
}

func (x listAppendExpr) value(it map[string]any) (any, error) {
	a, err := x.l.value(it)
	if err != nil {
		return nil, err
	}
	b, err := x.r.value(it)
	if err != nil {
		return nil, err
	}
	al, ok1 := a.([]any)
	bl, ok2 := b.([]any)
	if !ok1 || !ok2 {
		return nil, updateErr(x.pos, "list_append operands must be lists, not %s and %s", typeOf(a), typeOf(b))
	}
	out := make([]any, 0, len(al)+len(bl))
	return append(append(out, al...), bl...), nil
}

// Update parses an update expression; "" means no change (nil).
func (e *Env) Update(src string) (*UpdateExpr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	toks, err := lex("update", src)
	if err != nil {
		return nil, err
	}
	p := &parser{kind: "update", toks: toks, env: e}
	u := &UpdateExpr{}
	seen := map[string]bool{}
	var targets []path
	var targetPos []int
	for p.peek().kind != tEOF {
		kw := p.next()
		clause := strings.ToUpper(kw.text)
		if kw.kind != tIdent || !(clause == "SET" || clause == "REMOVE" || clause == "ADD" || clause == "DELETE") {
			return nil, p.errAt(kw, "expected SET, REMOVE, ADD or DELETE, found %s", kw)
		}
		if seen[clause] {
			return nil, p.errAt(kw, "the %s clause may appear only once", clause)
		}
		seen[clause] = true
		if clause == "DELETE" {
			return nil, p.errAt(kw, "DELETE is not supported: it removes elements from sets, and Tally has no set types")
		}
		for {
			start := p.peek()
			pa, err := p.path()
			if err != nil {
				return nil, err
			}
			targets, targetPos = append(targets, pa), append(targetPos, start.pos)
			switch clause {
			case "SET":
				if err := p.expect("="); err != nil {
					return nil, err
				}
				v, err := p.setValue()
				if err != nil {
					return nil, err
				}
				u.sets = append(u.sets, setAction{path: pa, val: v, pos: start.pos})
			case "REMOVE":
				u.removes = append(u.removes, pa)
			case "ADD":
				t := p.next()
				if t.kind != tValue {
					return nil, p.errAt(t, "ADD needs a :value, found %s", t)
				}
				v, err := p.value(t)
				if err != nil {
					return nil, err
				}
				n, ok := v.(items.Number)
				if !ok {
					return nil, p.errAt(t, "ADD supports only numbers here (Tally has no set types), not %s", typeOf(v))
				}
				u.adds = append(u.adds, addAction{path: pa, val: n, pos: start.pos})
			}
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
	}
	for i := range targets {
		for j := i + 1; j < len(targets); j++ {
			if msg := overlap(targets[i], targets[j]); msg != "" {
				return nil, updateErr(targetPos[j], "two document paths %s: %s and %s", msg, targets[i], targets[j])
			}
		}
	}
	return u, nil
}

// overlap says whether two update targets collide: one is a prefix of the
// other ("overlap"), or they diverge on a name against an index ("conflict").
func overlap(a, b path) string {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] == b[i] {
			continue
		}
		if a[i].isIndex != b[i].isIndex {
			return "conflict"
		}
		return ""
	}
	return "overlap"
}

// setValue parses operand [+|- operand].
func (p *parser) setValue() (setExpr, error) {
	l, err := p.setOperand()
	if err != nil {
		return nil, err
	}
	if p.isPunct("+") || p.isPunct("-") {
		op := p.next()
		r, err := p.setOperand()
		if err != nil {
			return nil, err
		}
		for _, x := range []setExpr{l, r} {
			if o, ok := x.(operandExpr); ok && o.o.kind == opValue {
				if _, isNum := o.o.val.(items.Number); !isNum {
					return nil, p.errAt(op, "incorrect operand type %s for %s", typeOf(o.o.val), op.text)
				}
			}
		}
		return arithExpr{op: op.text[0], l: l, r: r, pos: op.pos}, nil
	}
	return l, nil
}

// setOperand parses a path, a :value, if_not_exists(path, operand) or
// list_append(operand, operand).
func (p *parser) setOperand() (setExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	t := p.peek()
	isCall := t.kind == tIdent && p.peekN(1).kind == tPunct && p.peekN(1).text == "("
	switch {
	case isCall && t.text == "if_not_exists":
		p.next()
		p.next()
		pa, err := p.path()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		def, err := p.setOperand()
		if err != nil {
			return nil, err
		}
		return ifNotExistsExpr{path: pa, def: def}, p.expect(")")
	case isCall && t.text == "list_append":
		p.next()
		p.next()
		l, err := p.setOperand()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		r, err := p.setOperand()
		if err != nil {
			return nil, err
		}
		for _, x := range []setExpr{l, r} {
			if o, ok := x.(operandExpr); ok && o.o.kind == opValue {
				if _, isList := o.o.val.([]any); !isList {
					return nil, p.errAt(t, "incorrect operand type %s for list_append", typeOf(o.o.val))
				}
			}
		}
		return listAppendExpr{l: l, r: r, pos: t.pos}, p.expect(")")
	case isCall:
		return nil, p.errAt(t, "unknown function %q in an update expression", t.text)
	case t.kind == tValue:
		p.next()
		v, err := p.value(t)
		return operandExpr{o: operand{kind: opValue, val: v}, pos: t.pos}, err
	case t.kind == tIdent || t.kind == tName:
		pa, err := p.path()
		return operandExpr{o: operand{kind: opPath, path: pa}, pos: t.pos}, err
	}
	return nil, p.errAt(t, "expected an attribute, a :value, if_not_exists or list_append, found %s", t)
}

// Targets returns the top-level attributes the update changes, so that a
// caller can refuse changes to key attributes.
func (u *UpdateExpr) Targets() []string {
	if u == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(pa path) {
		if !seen[pa[0].name] {
			seen[pa[0].name] = true
			out = append(out, pa[0].name)
		}
	}
	for _, s := range u.sets {
		add(s.path)
	}
	for _, r := range u.removes {
		add(r)
	}
	for _, a := range u.adds {
		add(a.path)
	}
	return out
}

// Apply returns the item after the update; item (nil when absent) is not
// modified. Every SET operand is read from the item as it was before the
// update, as in DynamoDB. A missing operand, an operand of the wrong type
// or an invalid document path is an error wrapping tally.ErrInvalidArgument.
func (u *UpdateExpr) Apply(item map[string]any) (map[string]any, error) {
	out, _ := deepCopy(item).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	if u == nil {
		return out, nil
	}
	vals := make([]any, len(u.sets))
	for i, s := range u.sets {
		v, err := s.val.value(item)
		if err != nil {
			return nil, err
		}
		vals[i] = deepCopy(v)
	}
	for i, s := range u.sets {
		if err := setIn(out, s.path, vals[i]); err != nil {
			return nil, updateErr(s.pos, "SET %s: %v", s.path, err)
		}
	}
	removes := append([]path(nil), u.removes...)
	// Later list elements first, so earlier indexes still name the
	// elements the expression meant.
	sort.SliceStable(removes, func(i, j int) bool {
		a, b := removes[i], removes[j]
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k].isIndex && b[k].isIndex && a[k].index > b[k].index
			}
		}
		return false
	})
	for _, r := range removes {
		if err := removeIn(out, r); err != nil {
			return nil, &Error{Kind: "update", Msg: fmt.Sprintf("REMOVE %s: %v", r, err)}
		}
	}
	for _, a := range u.adds {
		cur, ok := resolve(out, a.path)
		v := any(a.val)
		if ok {
			n, isNum := cur.(items.Number)
			if !isNum {
				return nil, updateErr(a.pos, "ADD %s: the attribute is %s, not a number", a.path, typeOf(cur))
			}
			sum, err := n.Add(a.val)
			if err != nil {
				return nil, fmt.Errorf("invalid update expression: ADD %s: %w", a.path, err)
			}
			v = sum
		}
		if err := setIn(out, a.path, v); err != nil {
			return nil, updateErr(a.pos, "ADD %s: %v", a.path, err)
		}
	}
	return out, nil
}

var errBadPath = errors.New("the document path is invalid for update")

// setIn stores v at pa inside cur (a map or list), creating the last
// element: a missing map key is added, an index past a list's end appends.
func setIn(m map[string]any, pa path, v any) error {
	var set func(cur any, pa path) (any, error)
	set = func(cur any, pa path) (any, error) {
		e := pa[0]
		if e.isIndex {
			l, ok := cur.([]any)
			if !ok {
				return nil, errBadPath
			}
			if len(pa) == 1 {
				if e.index < len(l) {
					l[e.index] = v
					return l, nil
				}
				return append(l, v), nil
			}
			if e.index >= len(l) {
				return nil, errBadPath
			}
			child, err := set(l[e.index], pa[1:])
			if err != nil {
				return nil, err
			}
			l[e.index] = child
			return l, nil
		}
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, errBadPath
		}
		if len(pa) == 1 {
			mm[e.name] = v
			return mm, nil
		}
		c, ok := mm[e.name]
		if !ok {
			return nil, errBadPath
		}
		child, err := set(c, pa[1:])
		if err != nil {
			return nil, err
		}
		mm[e.name] = child
		return mm, nil
	}
	_, err := set(m, pa)
	return err
}

// removeIn deletes the element at pa; a missing last element is no change,
// a missing or mistyped parent is an invalid path.
func removeIn(m map[string]any, pa path) error {
	if len(pa) == 1 {
		delete(m, pa[0].name)
		return nil
	}
	parent, ok := resolve(m, pa[:len(pa)-1])
	if !ok {
		return errBadPath
	}
	last := pa[len(pa)-1]
	switch x := parent.(type) {
	case map[string]any:
		if last.isIndex {
			return errBadPath
		}
		delete(x, last.name)
		return nil
	case []any:
		if !last.isIndex {
			return errBadPath
		}
		if last.index >= len(x) {
			return nil
		}
		shrunk := append(x[:last.index:last.index], x[last.index+1:]...)
		return setIn(m, pa[:len(pa)-1], shrunk)
	}
	return errBadPath
}
