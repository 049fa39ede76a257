package openai

import (
	"fmt"
	"unicode/utf8"

	"github.com/tallyhq/tally"
)

// EstimateTokens over-estimates how many tokens OpenAI's byte-level BPE
// tokenizers (cl100k, o200k) make of s, without shipping a tokenizer. It
// only has to keep requests under the API's limits, so it errs high:
//
//   - a run of ASCII letters counts one token per 3 letters, rounded up
//     (English words average about 4 letters per token);
//   - a run of digits counts one per 3 digits, rounded up (the tokenizers
//     split numbers into groups of at most 3 digits, so this is exact);
//   - a run of whitespace counts 1, each other ASCII character counts 1;
//   - every other character counts one per UTF-8 byte (a byte-level
//     tokenizer never makes more tokens than bytes).
//
// Receipt text is digit- and punctuation-heavy, where a plain bytes/3 rule
// would under-count ("12.50" is 3 tokens in 5 bytes). Letter soup with no
// common subwords can still exceed the estimate; the server then answers
// 400, which Embed reports as ErrRejected.
func EstimateTokens(s string) int {
	const (
		none = iota
		letters
		digits
		space
	)
	tokens, run, runLen := 0, none, 0
	flush := func() {
		switch run {
		case letters, digits:
			tokens += (runLen + 2) / 3
		case space:
			tokens++
		}
		run, runLen = none, 0
	}
	for _, r := range s {
		kind := none
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			kind = letters
		case r >= '0' && r <= '9':
			kind = digits
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f':
			kind = space
		}
		if kind != run {
			flush()
		}
		switch {
		case kind != none:
			run = kind
			runLen++
		case r < utf8.RuneSelf:
			tokens++
		default:
			tokens += utf8.RuneLen(r) // invalid UTF-8 is sent as U+FFFD: 3 bytes
		}
	}
	flush()
	return tokens
}

// batch is the half-open range of texts sent in one request.
type batch struct{ start, end int }

// planBatches groups consecutive texts into requests of at most maxInputs
// texts and maxTokens estimated tokens. A text that cannot fit any request
// (over MaxInputTokens or maxTokens on its own) is ErrInvalidArgument.
func planBatches(texts []string, maxInputs, maxTokens int) ([]batch, error) {
	perInput := min(MaxInputTokens, maxTokens)
	var out []batch
	cur, curTokens := batch{}, 0
	for i, s := range texts {
		n := EstimateTokens(s)
		if n > perInput {
			return nil, fmt.Errorf("text %d is about %d tokens (%d bytes), over the %d-token limit for one input: %w",
				i, n, len(s), perInput, tally.ErrInvalidArgument)
		}
		if cur.end > cur.start && (cur.end-cur.start == maxInputs || curTokens+n > maxTokens) {
			out = append(out, cur)
			cur, curTokens = batch{start: i, end: i}, 0
		}
		cur.end = i + 1
		curTokens += n
	}
	if cur.end > cur.start {
		out = append(out, cur)
	}
	return out, nil
}
