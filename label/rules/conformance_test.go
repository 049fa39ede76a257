package rules_test

import (
	"testing"

	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/labeltest"
	"github.com/tallyhq/tally/label/rules"
)

func TestConformance(t *testing.T) {
	labeltest.Run(t, labeltest.Features{Deterministic: true, FindsTotals: true}, func(*testing.T) label.Labeller { return rules.New() })
}
