package llm_test

import (
	"testing"

	"github.com/tallyhq/tally/internal/fakes"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/labeltest"
	"github.com/tallyhq/tally/label/llm"
	"github.com/tallyhq/tally/label/rules"
)

// TestConformance: the rules refined by the LLM pass the labeller suite,
// against a server that agrees with the rules (an answer naming nothing
// new) and against one that answers garbage (the rules' labels stand).
func TestConformance(t *testing.T) {
	for name, content := range map[string]string{
		"agrees":  `{"reasoning":"","fields":[],"line_items":[],"labels":[],"currency":""}`,
		"garbage": `I cannot help with that receipt.`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			labeltest.Run(t, labeltest.Features{Deterministic: true, FindsTotals: true}, func(t *testing.T) label.Labeller {
				chat := fakes.NewChat(t, func(fakes.ChatRequest) fakes.ChatReply {
					return fakes.ChatReply{Body: fakes.ChatCompletion("m", content, "stop")}
				})
				r, err := llm.New(llm.Options{BaseURL: chat.URL, APIKey: "test", Model: "m", MaxRetries: -1})
				if err != nil {
					t.Fatal(err)
				}
				return labeltest.Refined{Pipeline: label.Pipeline{Rules: rules.New(), Refiner: r}}
			})
		})
	}
}
