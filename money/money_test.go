package money

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"9.00", "9.00"}, {"RM9.00", "9.00"}, {"RM 9.00", "9.00"}, {"$1.10", "1.10"},
		{"1,234.50", "1234.50"}, {"1.234,56", "1234.56"}, {"1,234", "1234"}, {"1,234,567", "1234567"},
		{"12,50", "12.50"}, {"-3.10", "-3.10"}, {"$-3.10", "-3.10"}, {"5.00-", "-5.00"}, {"(2.00)", "-2.00"},
		{"9.000", "9.000"}, {"0", "0"}, {"USD 12.5", "12.5"},
	}
	for _, tt := range tests {
		a, err := Parse(tt.in)
		if err != nil || a.String() != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tt.in, a, err, tt.want)
		}
	}
	for _, bad := range []string{"", "RM", "abc", "1.2.3x", "12.34567", "99999999999999999999"} {
		if _, err := Parse(bad); !errors.Is(err, ErrAmount) {
			t.Errorf("Parse(%q) = %v, want ErrAmount", bad, err)
		}
	}
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	p := func(s string) Amount {
		a, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if got := p("0.10").Add(p("0.20")); got.Cmp(p("0.30")) != 0 || got.String() != "0.30" {
		t.Errorf("0.10 + 0.20 = %s", got)
	}
	if got := p("13.30").Add(p("0.80")).Sub(p("14.10")); !got.IsZero() {
		t.Errorf("13.30 + 0.80 − 14.10 = %s", got)
	}
	if got := p("3").Mul(p("2.49")); got.String() != "7.47" {
		t.Errorf("3 × 2.49 = %s", got)
	}
	if got := p("9.005").Fixed(2); got != "9.01" {
		t.Errorf("Fixed(2) of 9.005 = %s", got)
	}
	if got := p("-9.005").Fixed(2); got != "-9.01" {
		t.Errorf("Fixed(2) of -9.005 = %s", got)
	}
	if p("1.5").Cmp(p("1.50")) != 0 || p("2").Cmp(p("1.99")) != 1 || p("-1").Abs().String() != "1" {
		t.Error("comparison")
	}
}

func TestUnitsAndMustParse(t *testing.T) {
	for _, c := range []struct {
		in     string
		places int8
		want   int64
	}{{"12.345", 2, 1235}, {"-0.005", 2, -1}, {"7", 2, 700}, {"9.99", 0, 10}} {
		if got := MustParse(c.in).Units(c.places); got != c.want {
			t.Errorf("Units(%d) of %s = %d, want %d", c.places, c.in, got, c.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParse of a bad constant did not panic")
		}
	}()
	MustParse("twelve")
}
