package expr

import (
	"fmt"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// ParseCond parses a Cond on its own: every placeholder it declares must be
// used. Every item adapter checks conditions with it, so they refuse the
// same inputs with the same errors.
func ParseCond(c items.Cond) (*Condition, error) {
	env, err := NewEnv(c.Names, c.Values)
	if err != nil {
		return nil, err
	}
	cond, err := env.Condition(c.Expr)
	if err != nil {
		return nil, err
	}
	return cond, env.Done()
}

// ParseUpdate parses an update expression with its condition, which share
// the placeholders (each must be used by one of them), and refuses updates
// of the key attributes, as DynamoDB does.
func ParseUpdate(update, cond string, names map[string]string, values map[string]any) (*UpdateExpr, *Condition, error) {
	env, err := NewEnv(names, values)
	if err != nil {
		return nil, nil, err
	}
	u, err := env.Update(update)
	if err != nil {
		return nil, nil, err
	}
	c, err := env.Condition(cond)
	if err != nil {
		return nil, nil, err
	}
	if err := env.Done(); err != nil {
		return nil, nil, err
	}
	for _, a := range u.Targets() {
		if a == items.AttrPK || a == items.AttrSK {
			return nil, nil, fmt.Errorf("cannot update %s: it is part of the key: %w", a, tally.ErrInvalidArgument)
		}
	}
	return u, c, nil
}
