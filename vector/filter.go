package vector

import (
	"fmt"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/vector/segment"
)

func (f Filter) validate() error {
	if f.Field == "" {
		return fmt.Errorf("filter with no field: %w", tally.ErrInvalidArgument)
	}
	switch f.Op {
	case OpEq, OpNe:
		if len(f.Values) != 1 {
			return fmt.Errorf("filter %s %s: want one value, got %d: %w", f.Field, f.Op, len(f.Values), tally.ErrInvalidArgument)
		}
	case OpIn, OpNin:
		if len(f.Values) == 0 {
			return fmt.Errorf("filter %s %s: no values: %w", f.Field, f.Op, tally.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("filter %s: unknown operator %q (want =, !=, in, not in): %w", f.Field, f.Op, tally.ErrInvalidArgument)
	}
	for _, v := range f.Values {
		switch v.(type) {
		case string, bool, float64, float32, int, int64, int32:
		default:
			return fmt.Errorf("filter %s: value %v of type %T: want string, number or bool: %w", f.Field, v, v, tally.ErrInvalidArgument)
		}
	}
	return nil
}

// matches reports whether record i passes every filter.
func matches(seg *segment.Segment, i int, filters []Filter) bool {
	for _, f := range filters {
		val, ok := seg.MetaField(i, f.Field)
		in := false
		if ok {
			for _, want := range f.Values {
				if val.Equal(want) {
					in = true
					break
				}
			}
		}
		switch f.Op {
		case OpEq, OpIn:
			if !in {
				return false
			}
		case OpNe, OpNin:
			if in {
				return false
			}
		}
	}
	return true
}
