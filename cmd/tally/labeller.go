package main

import (
	"fmt"
	"log/slog"

	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/llm"
	"github.com/tallyhq/tally/label/rules"
)

// newLabelPipeline is receipt understanding as this process runs it: the
// offline rules engine, its proposals improved by the refiner cfg
// configures when there is one (labelRefiner).
func newLabelPipeline(cfg config.Config, t items.Table, log *slog.Logger) (label.Pipeline, error) {
	pl := label.Pipeline{Rules: rules.New(), Log: log}
	refiner, err := labelRefiner(cfg, t, log)
	if err != nil {
		return label.Pipeline{}, err
	}
	pl.Refiner = refiner
	return pl, nil
}

// labelRefiner opens the LLM refiner cfg.LLMURL names (TALLY_LLM_URL),
// its answers cached in the item store, or returns nil when none is
// configured and the rules label every receipt.
func labelRefiner(cfg config.Config, t items.Table, log *slog.Logger) (label.Refiner, error) {
	if cfg.LLMURL == "" {
		return nil, nil
	}
	r, err := llm.FromURL(cfg.LLMURL, llm.Options{Table: t, Log: log})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvLLMURL, err)
	}
	return r, nil
}
