package expr

import (
	"strings"
)

// Condition is a parsed condition expression. A nil *Condition (from an
// empty expression) always holds.
type Condition struct {
	root node
}

// Condition parses a condition expression; "" means no condition (nil).
func (e *Env) Condition(src string) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	toks, err := lex("condition", src)
	if err != nil {
		return nil, err
	}
	p := &parser{kind: "condition", toks: toks, env: e}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "unexpected %s", t)
	}
	return &Condition{root: n}, nil
}

// Eval reports whether the condition holds on item (nil when there is no
// item, or it has expired). Evaluation never fails: operands that are
// absent or of the wrong type make their comparison false.
func (c *Condition) Eval(item map[string]any) bool {
	if c == nil {
		return true
	}
	return c.root.eval(item)
}

type node interface {
	eval(item map[string]any) bool
}

type (
	andNode struct{ l, r node }
	orNode  struct{ l, r node }
	notNode struct{ x node }
	cmpNode struct {
		op   string
		l, r operand
	}
	betweenNode struct{ x, lo, hi operand }
	inNode      struct {
		x    operand
		list []operand
	}
	funcNode struct {
		name string
		path path
		arg  operand
	}
)

func (n andNode) eval(it map[string]any) bool { return n.l.eval(it) && n.r.eval(it) }
func (n orNode) eval(it map[string]any) bool  { return n.l.eval(it) || n.r.eval(it) }
func (n notNode) eval(it map[string]any) bool { return !n.x.eval(it) }

func (n cmpNode) eval(it map[string]any) bool {
	a, ok := n.l.get(it)
	if !ok {
		return false
	}
	b, ok := n.r.get(it)
	if !ok {
		return false
	}
	switch n.op {
	case "=":
		return equal(a, b)
	case "<>":
		return !equal(a, b)
	}
	c, ok := order(a, b)
	if !ok {
		return false
	}
	switch n.op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	default: // ">="
		return c >= 0
	}
}

func (n betweenNode) eval(it map[string]any) bool {
	x, ok1 := n.x.get(it)
	lo, ok2 := n.lo.get(it)
	hi, ok3 := n.hi.get(it)
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	c1, ok1 := order(lo, x)
	c2, ok2 := order(x, hi)
	return ok1 && ok2 && c1 <= 0 && c2 <= 0
}

func (n inNode) eval(it map[string]any) bool {
	x, ok := n.x.get(it)
	if !ok {
		return false
	}
	for _, o := range n.list {
		if v, ok := o.get(it); ok && equal(x, v) {
			return true
		}
	}
	return false
}

func (n funcNode) eval(it map[string]any) bool {
	v, exists := resolve(it, n.path)
	switch n.name {
	case "attribute_exists":
		return exists
	case "attribute_not_exists":
		return !exists
	}
	if !exists {
		return false
	}
	arg, ok := n.arg.get(it)
	if !ok {
		return false
	}
	switch n.name {
	case "attribute_type":
		t, _ := arg.(string)
		return typeOf(v) == t
	case "begins_with":
		switch x := v.(type) {
		case string:
			p, ok := arg.(string)
			return ok && strings.HasPrefix(x, p)
		case []byte:
			p, ok := arg.([]byte)
			return ok && len(p) <= len(x) && string(x[:len(p)]) == string(p)
		}
		return false
	default: // contains
		return contains(v, arg)
	}
}

// operand is a path, a value or size(path).
type operand struct {
	kind int // opPath, opValue, opSize
	path path
	val  any
}

const (
	opPath = iota
	opValue
	opSize
)

func (o operand) get(it map[string]any) (any, bool) {
	switch o.kind {
	case opValue:
		return o.val, true
	case opSize:
		v, ok := resolve(it, o.path)
		if !ok {
			return nil, false
		}
		return size(v)
	}
	return resolve(it, o.path)
}

var condFuncs = map[string]bool{
	"attribute_exists": true, "attribute_not_exists": true, "attribute_type": true,
	"begins_with": true, "contains": true,
}

var comparators = map[string]bool{"=": true, "<>": true, "<": true, "<=": true, ">": true, ">=": true}

var attrTypes = map[string]bool{
	"S": true, "SS": true, "N": true, "NS": true, "B": true, "BS": true,
	"BOOL": true, "NULL": true, "L": true, "M": true,
}

func (p *parser) or() (node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("OR") {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) and() (node, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("AND") {
		p.next()
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) not() (node, error) {
	if p.isKeyword("NOT") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		p.next()
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	return p.primary()
}

func (p *parser) primary() (node, error) {
	t := p.peek()
	if p.isPunct("(") {
		p.next()
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		return n, p.expect(")")
	}
	if t.kind == tIdent && condFuncs[t.text] && p.peekN(1).kind == tPunct && p.peekN(1).text == "(" {
		return p.function()
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := p.peek()
	switch {
	case op.kind == tPunct && comparators[op.text]:
		p.next()
		r, err := p.operand()
		if err != nil {
			return nil, err
		}
		if op.text != "=" && op.text != "<>" {
			if err := p.checkOrderable(op, l, r); err != nil {
				return nil, err
			}
		}
		return cmpNode{op.text, l, r}, nil
	case p.isKeyword("BETWEEN"):
		p.next()
		lo, err := p.operand()
		if err != nil {
			return nil, err
		}
		if !p.isKeyword("AND") {
			return nil, p.errAt(p.peek(), "expected AND in BETWEEN, found %s", p.peek())
		}
		p.next()
		hi, err := p.operand()
		if err != nil {
			return nil, err
		}
		if err := p.checkOrderable(op, l, lo, hi); err != nil {
			return nil, err
		}
		if lo.kind == opValue && hi.kind == opValue {
			c, ok := order(lo.val, hi.val)
			if !ok {
				return nil, p.errAt(op, "BETWEEN bounds are of different types (%s and %s)", typeOf(lo.val), typeOf(hi.val))
			}
			if c > 0 {
				return nil, p.errAt(op, "BETWEEN lower bound is greater than its upper bound")
			}
		}
		return betweenNode{l, lo, hi}, nil
	case p.isKeyword("IN"):
		p.next()
		if err := p.expect("("); err != nil {
			return nil, err
		}
		var list []operand
		for {
			o, err := p.operand()
			if err != nil {
				return nil, err
			}
			list = append(list, o)
			if len(list) > maxInOperands {
				return nil, p.errAt(op, "IN has more than %d operands", maxInOperands)
			}
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
		return inNode{l, list}, p.expect(")")
	}
	return nil, p.errAt(op, "expected a comparator, BETWEEN or IN, found %s", op)
}

// checkOrderable rejects value operands that < <= > >= and BETWEEN cannot
// order (DynamoDB: "incorrect operand type").
func (p *parser) checkOrderable(op token, ops ...operand) error {
	for _, o := range ops {
		if o.kind == opValue && !orderable(o.val) {
			return p.errAt(op, "incorrect operand type %s for %s", typeOf(o.val), op.text)
		}
	}
	return nil
}

func (p *parser) operand() (operand, error) {
	t := p.peek()
	switch {
	case t.kind == tValue:
		p.next()
		v, err := p.value(t)
		return operand{kind: opValue, val: v}, err
	case t.kind == tIdent && t.text == "size" && p.peekN(1).kind == tPunct && p.peekN(1).text == "(":
		p.next()
		p.next()
		pa, err := p.path()
		if err != nil {
			return operand{}, err
		}
		return operand{kind: opSize, path: pa}, p.expect(")")
	case t.kind == tIdent || t.kind == tName:
		pa, err := p.path()
		return operand{kind: opPath, path: pa}, err
	}
	return operand{}, p.errAt(t, "expected an attribute, a :value or size(…), found %s", t)
}

func (p *parser) function() (node, error) {
	name := p.next()
	p.next() // (
	pa, err := p.path()
	if err != nil {
		return nil, err
	}
	n := funcNode{name: name.text, path: pa}
	switch name.text {
	case "attribute_exists", "attribute_not_exists":
	default:
		if err := p.expect(","); err != nil {
			return nil, err
		}
		if n.arg, err = p.operand(); err != nil {
			return nil, err
		}
		if n.arg.kind == opValue {
			switch name.text {
			case "attribute_type":
				s, ok := n.arg.val.(string)
				if !ok || !attrTypes[s] {
					return nil, p.errAt(name, "attribute_type needs one of S, SS, N, NS, B, BS, BOOL, NULL, L, M")
				}
			case "begins_with":
				switch n.arg.val.(type) {
				case string, []byte:
				default:
					return nil, p.errAt(name, "incorrect operand type %s for begins_with", typeOf(n.arg.val))
				}
			}
		}
	}
	return n, p.expect(")")
}
