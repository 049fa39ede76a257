package expr

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

func norm(t testing.TB, v map[string]any) map[string]any {
	t.Helper()
	n, err := items.Normalize(v)
	if err != nil {
		t.Fatal(err)
	}
	return n.(map[string]any)
}

var sample = map[string]any{
	"PK":    "IMAGE#1",
	"SK":    "RECEIPT#00001",
	"n":     7,
	"f":     2.5,
	"s":     "hello",
	"blank": "",
	"b":     []byte{1, 2, 3},
	"yes":   true,
	"nul":   nil,
	"l":     []any{"x", 2, map[string]any{"deep": "y"}},
	"m":     map[string]any{"a": map[string]any{"b": 1}, "k.dot": "dotted"},
	"ver":   3,
}

var sampleValues = map[string]any{
	":seven": 7, ":six": 6, ":eight": 8.0, ":hello": "hello", ":he": "he", ":x": "x",
	":b": []byte{1, 2, 3}, ":b1": []byte{1}, ":t": true, ":S": "S", ":N": "N", ":L": "L", ":M": "M",
	":NULL": "NULL", ":BOOL": "BOOL", ":B": "B", ":two": 2, ":three": 3, ":list": []any{"x", 2, map[string]any{"deep": "y"}},
	":ell": "ell",
}

func TestConditionEval(t *testing.T) {
	item := norm(t, sample)
	tests := []struct {
		expr string
		want bool
	}{
		{"n = :seven", true},
		{"n = :eight", false},
		{"n <> :eight", true},
		{"n < :eight", true},
		{"n <= :seven", true},
		{"n > :six", true},
		{"n >= :eight", false},
		{"f < :three", true},
		{"f > :two", true},
		{"s = :hello", true},
		{"s > :he", true},
		{"s < :he", false},
		{"n = :hello", false}, // different types: false, not an error
		{"n < :hello", false},
		{"s <> :seven", true},
		{"absent = :seven", false},
		{"absent < :seven", false},
		{"NOT absent = :seven", true},
		{"b = :b", true},
		{"b > :b1", true},
		{"yes = :t", true},
		{"n BETWEEN :six AND :eight", true},
		{"n between :two AND :three", false},
		{"s BETWEEN :he AND :x", true},
		{"n IN (:six, :seven)", true},
		{"n IN (:six, :eight)", false},
		{"s IN (:hello)", true},
		{"attribute_exists(PK)", true},
		{"attribute_not_exists(PK)", false},
		{"attribute_exists(absent)", false},
		{"attribute_not_exists(absent)", true},
		{"attribute_exists(m.a.b)", true},
		{"attribute_exists(m.a.c)", false},
		{"attribute_exists(l[2].deep)", true},
		{"attribute_exists(l[3])", false},
		{"attribute_exists(#dot)", false},
		{"attribute_exists(m.#dot)", true},
		{"attribute_type(s, :S)", true},
		{"attribute_type(n, :N)", true},
		{"attribute_type(f, :N)", true},
		{"attribute_type(l, :L)", true},
		{"attribute_type(m, :M)", true},
		{"attribute_type(nul, :NULL)", true},
		{"attribute_type(yes, :BOOL)", true},
		{"attribute_type(b, :B)", true},
		{"attribute_type(s, :N)", false},
		{"begins_with(s, :he)", true},
		{"begins_with(s, :x)", false},
		{"begins_with(b, :b1)", true},
		{"begins_with(n, :he)", false},
		{"contains(s, :ell)", true},
		{"contains(s, :x)", false},
		{"contains(l, :x)", true},
		{"contains(l, :two)", true},
		{"contains(l, :three)", false},
		{"size(s) = :seven", false},
		{"size(s) < :six", true},
		{"size(l) = :three", true},
		{"size(m) = :two", true},
		{"size(b) = :three", true},
		{"size(n) = :seven", false},
		{"size(blank) < :two", true},
		{"l = :list", true},
		{"n = ver", false},
		{"ver < n", true},
		// Precedence: NOT > AND > OR.
		{"n = :eight OR n = :seven AND s = :hello", true},
		{"n = :seven OR n = :eight AND s = :x", true},
		{"(n = :seven OR n = :eight) AND s = :x", false},
		{"NOT n = :eight AND s = :hello", true},
		{"NOT (n = :seven AND s = :hello)", false},
		{"NOT NOT n = :seven", true},
		{"not n = :eight and s = :hello", true},
		{"((n = :seven))", true},
	}
	for _, tt := range tests {
		env, err := NewEnv(map[string]string{"#dot": "k.dot"}, sampleValues)
		if err != nil {
			t.Fatal(err)
		}
		c, err := env.Condition(tt.expr)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		if got := c.Eval(item); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.expr, got, tt.want)
		}
		if got := c.Eval(nil); got && !strings.Contains(tt.expr, "not_exists") && !strings.HasPrefix(tt.expr, "NOT") && !strings.HasPrefix(tt.expr, "not") {
			t.Errorf("%s holds on a absent item", tt.expr)
		}
	}
}

func TestConditionErrors(t *testing.T) {
	tests := []struct {
		expr string
		msg  string
	}{
		{"n =", "expected an attribute"},
		{"n = :nope", "not defined"},
		{"#nope = :seven", "not defined"},
		{"n == :seven", "expected an attribute"},
		{"n :seven", "expected a comparator"},
		{"(n = :seven", `expected ")"`},
		{"n = :seven)", "unexpected"},
		{"n = :seven AND", "expected an attribute"},
		{"status = :seven", "reserved word"},
		{"size = :seven", "reserved word"},
		{"n BETWEEN :seven", "expected AND"},
		{"n BETWEEN :eight AND :seven", "lower bound is greater"},
		{"n < :t", "incorrect operand type BOOL"},
		{"n IN ()", "expected an attribute"},
		{"attribute_exists(:seven)", "expected an attribute name"},
		{"attribute_type(n, :hello)", "attribute_type needs"},
		{"begins_with(s, :seven)", "incorrect operand type N"},
		{"n = :seven @", "unexpected character"},
		{"l[x] = :seven", "expected a list index"},
		{"n = : ", "placeholder name"},
		{strings.Repeat("(", 300) + "n = :seven" + strings.Repeat(")", 300), "nested too deeply"},
		{strings.Repeat("n = :seven OR ", 400) + "n = :seven", "more than 4096"},
	}
	for _, tt := range tests {
		env, _ := NewEnv(nil, sampleValues)
		_, err := env.Condition(tt.expr)
		if !errors.Is(err, tally.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%.40s: error %v, want ErrInvalidArgument containing %q", tt.expr, err, tt.msg)
		}
	}
}

func TestErrorPosition(t *testing.T) {
	env, _ := NewEnv(nil, map[string]any{":v": 1})
	_, err := env.Condition("a = :v AND b = :w")
	var e *Error
	if !errors.As(err, &e) || e.Pos != 16 {
		t.Fatalf("error %v, want position 16", err)
	}
}

func TestPlaceholders(t *testing.T) {
	env, err := NewEnv(map[string]string{"#a": "a", "#unused": "u"}, map[string]any{":v": 1, ":w": 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Condition("#a = :v"); err != nil {
		t.Fatal(err)
	}
	err = env.Done()
	if !errors.Is(err, tally.ErrInvalidArgument) || !strings.Contains(err.Error(), "#unused, :w") {
		t.Fatalf("Done = %v, want unused #unused and :w", err)
	}
	// Shared between an update and its condition: used by either counts.
	env, _ = NewEnv(nil, map[string]any{":v": 1, ":w": 2})
	if _, err := env.Update("SET a = :v"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Condition("b = :w"); err != nil {
		t.Fatal(err)
	}
	if err := env.Done(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		n map[string]string
		v map[string]any
	}{
		{map[string]string{"a": "a"}, nil},
		{map[string]string{"#a": ""}, nil},
		{nil, map[string]any{"v": 1}},
		{nil, map[string]any{":v": struct{}{}}},
		{nil, map[string]any{":v": "\xff"}},
	} {
		if _, err := NewEnv(bad.n, bad.v); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("NewEnv(%v, %v) = %v, want ErrInvalidArgument", bad.n, bad.v, err)
		}
	}
}

func TestUpdateApply(t *testing.T) {
	base := map[string]any{
		"PK": "P", "SK": "S", "n": 5, "s": "x", "l": []any{1, 2, 3},
		"m": map[string]any{"a": 1}, "gone": "bye",
	}
	values := map[string]any{
		":one": 1, ":ten": 10, ":y": "y", ":more": []any{4, 5}, ":zero": 0, ":half": 0.5,
		":nbig": items.Number("12345678901234567890123456789012345678"), ":m": map[string]any{"z": true},
	}
	tests := []struct {
		expr string
		want map[string]any // only these attributes are compared (nil value: absent)
	}{
		{"SET n = n + :one", map[string]any{"n": 6}},
		{"SET n = n - :ten", map[string]any{"n": -5}},
		{"SET n = :ten - n", map[string]any{"n": 5}},
		{"SET n = n + :half", map[string]any{"n": 5.5}},
		{"SET c = if_not_exists(c, :zero) + :one", map[string]any{"c": 1}},
		{"SET n = if_not_exists(n, :zero) + :one", map[string]any{"n": 6}},
		{"SET l = list_append(l, :more)", map[string]any{"l": []any{1, 2, 3, 4, 5}}},
		{"SET l = list_append(:more, l)", map[string]any{"l": []any{4, 5, 1, 2, 3}}},
		{"SET nl = list_append(if_not_exists(nl, :more), :more)", map[string]any{"nl": []any{4, 5, 4, 5}}},
		{"SET m.b = :y, m.a = m.a + :one", map[string]any{"m": map[string]any{"a": 2, "b": "y"}}},
		{"SET l[1] = :y", map[string]any{"l": []any{1, "y", 3}}},
		{"SET l[9] = :y", map[string]any{"l": []any{1, 2, 3, "y"}}},
		{"SET a = n, n = :ten", map[string]any{"a": 5, "n": 10}}, // operands read before any SET
		{"SET s = :m", map[string]any{"s": map[string]any{"z": true}}},
		{"REMOVE gone, absent", map[string]any{"gone": nil, "s": "x"}},
		{"REMOVE l[0], l[2]", map[string]any{"l": []any{2}}},
		{"REMOVE m.a", map[string]any{"m": map[string]any{}}},
		{"ADD n :ten", map[string]any{"n": 15}},
		{"ADD fresh :ten", map[string]any{"fresh": 10}},
		{"SET s = :y REMOVE gone ADD n :one", map[string]any{"s": "y", "gone": nil, "n": 6}},
		{"remove gone set s = :y", map[string]any{"s": "y", "gone": nil}},
		{"SET n = :nbig", map[string]any{"n": 1.2345678901234568e37}},
	}
	item := norm(t, base)
	for _, tt := range tests {
		env, _ := NewEnv(nil, values)
		u, err := env.Update(tt.expr)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		var got map[string]any
		if got, err = u.Apply(item); err != nil {
			t.Errorf("%s: apply: %v", tt.expr, err)
			continue
		}
		got = items.Output(got).(map[string]any)
		for k, want := range tt.want {
			if want == nil {
				if v, ok := got[k]; ok {
					t.Errorf("%s: %s = %v, want absent", tt.expr, k, v)
				}
				continue
			}
			w, _ := items.Normalize(want)
			if !reflect.DeepEqual(got[k], items.Output(w)) {
				t.Errorf("%s: %s = %#v, want %#v", tt.expr, k, got[k], items.Output(w))
			}
		}
	}
	// The input item is never modified.
	if !reflect.DeepEqual(items.Output(item), items.Output(norm(t, base))) {
		t.Errorf("Apply modified its input: %v", item)
	}
}

func TestUpdateErrors(t *testing.T) {
	values := map[string]any{":one": 1, ":s": "x", ":l": []any{1}}
	parseErrs := []struct{ expr, msg string }{
		{"SET", "expected an attribute"},
		{"SET a", `expected "="`},
		{"SET a = ", "expected an attribute"},
		{"SET a = :one SET b = :one", "only once"},
		{"SET a = :one, a = :one", "overlap"},
		{"SET a.b = :one REMOVE a", "overlap"},
		{"SET a[0] = :one REMOVE a.b", "conflict"},
		{"SET a = :s + :one", "incorrect operand type S"},
		{"SET a = list_append(:one, a)", "incorrect operand type N"},
		{"SET a = nope(b)", "unknown function"},
		{"ADD a :s", "only numbers"},
		{"ADD a b", "needs a :value"},
		{"DELETE a :one", "not supported"},
		{"UPSERT a = :one", "expected SET"},
		{"SET a = :one,", "expected an attribute"},
		{"SET name = :one", "reserved word"},
	}
	for _, tt := range parseErrs {
		env, _ := NewEnv(nil, values)
		_, err := env.Update(tt.expr)
		if !errors.Is(err, tally.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %v, want ErrInvalidArgument containing %q", tt.expr, err, tt.msg)
		}
	}
	item := norm(t, map[string]any{"PK": "P", "SK": "S", "s": "x", "n": 1, "m": map[string]any{}})
	applyErrs := []struct{ expr, msg string }{
		{"SET a = absent + :one", "does not exist"},
		{"SET a = s + :one", "must be numbers"},
		{"SET a = list_append(s, :l)", "must be lists"},
		{"ADD s :one", "not a number"},
		{"SET x.y = :one", "invalid for update"},
		{"SET n[0] = :one", "invalid for update"},
		{"SET m.a.b = :one", "invalid for update"},
		{"REMOVE x.y", "invalid for update"},
	}
	for _, tt := range applyErrs {
		env, _ := NewEnv(nil, values)
		u, err := env.Update(tt.expr)
		if err != nil {
			t.Errorf("%s: parse: %v", tt.expr, err)
			continue
		}
		_, err = u.Apply(item)
		if !errors.Is(err, tally.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: apply error %v, want ErrInvalidArgument containing %q", tt.expr, err, tt.msg)
		}
	}
}

func TestTargets(t *testing.T) {
	env, _ := NewEnv(map[string]string{"#k": "SK"}, map[string]any{":v": 1})
	u, err := env.Update("SET a.b = :v, #k = :v REMOVE c ADD a.d :v")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Targets(); !reflect.DeepEqual(got, []string{"a", "SK", "c"}) {
		t.Fatalf("Targets = %v", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a = :v", "NOT (a < :v OR b BETWEEN :v AND :w) AND attribute_exists(#n.c[3])",
		"a IN (:v, :w)", "size(a) > :v", "begins_with(a, :v)", "contains(#n, :w)",
		"SET a = a + :v, b = if_not_exists(b, :w) REMOVE c[1] ADD d :v",
		"SET l = list_append(if_not_exists(l, :w), :w)", "attribute_type(a, :t)",
		"((((", "a[99999999999999999999] = :v", "SET a[0].b = :v",
	} {
		f.Add(s)
	}
	item := norm(f, sample)
	f.Fuzz(func(t *testing.T, s string) {
		env, err := NewEnv(map[string]string{"#n": "n"}, map[string]any{":v": 1, ":w": []any{"x"}, ":t": "S"})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := env.Condition(s); err == nil {
			c.Eval(item)
			c.Eval(nil)
		} else if !errors.Is(err, tally.ErrInvalidArgument) {
			t.Fatalf("condition error %v is not ErrInvalidArgument", err)
		}
		if u, err := env.Update(s); err == nil {
			if _, err := u.Apply(item); err != nil && !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("apply error %v is not ErrInvalidArgument", err)
			}
			_, _ = u.Apply(nil)
		} else if !errors.Is(err, tally.ErrInvalidArgument) {
			t.Fatalf("update error %v is not ErrInvalidArgument", err)
		}
		_ = env.Done()
	})
}
