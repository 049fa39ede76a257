package llm

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/money"
)

// exactly reads a decimal as an exact rational; nil when it is none.
func exactly(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	return r
}

// near reports whether the decimal got is v (text as printed, for
// money.Parse) rounded to cents: within half a cent of it, exactly.
func near(got, v string) bool {
	a, err := money.Parse(v)
	if err != nil {
		return false
	}
	g, w := exactly(got), exactly(a.String())
	if g == nil || w == nil {
		return false
	}
	d := new(big.Rat).Sub(g, w)
	return d.Abs(d).Cmp(big.NewRat(1, 200)) <= 0
}

func fuzzAnswerSeeds(f *testing.F) []string {
	good, err := json.Marshal(goodAnswer())
	if err != nil {
		f.Fatal(err)
	}
	m := func(a ans) string {
		b, err := json.Marshal(a)
		if err != nil {
			f.Fatal(err)
		}
		return string(b)
	}
	return []string{
		string(good),
		"```json\n" + string(good) + "\n```",
		"```" + string(good) + "```",
		m(with(goodAnswer(), "fields", []any{field(label.GrandTotal, [][2]int{{9, 1}}, "922337203685477580")})),
		m(with(goodAnswer(), "fields", []any{field(label.GrandTotal, nil, "(1,234.565)"), field(label.GrandTotal, [][2]int{{9, 1}}, "")})),
		m(with(goodAnswer(), "fields", []any{field("TOTALS", nil, "1")})),
		m(with(goodAnswer(), "fields", []any{ans{"label": label.Tax, "words": []any{[]int{7}}, "value": "0.48"}})),
		m(with(goodAnswer(), "labels", []any{wordLabel(99, 1, label.GrandTotal)})),
		m(with(goodAnswer(), "line_items", []any{ans{"name": "", "quantity": "2", "unit_price": "1.2345", "price": "-3",
			"is_discount": true, "words": pairs([][2]int{{4, 1}})}})),
		m(with(goodAnswer(), "currency", 7)),
		m(with(goodAnswer(), "extra", "x")),
		`{"reasoning":"","fields":[],"line_items":[],"labels":[],"currency":""}`,
		`{"reasoning":"","fields":[],"line_items":[],"labels":[{"line_id":1e2,"word_id":1,"label":"MERCHANT_NAME"}],"currency":""}`,
		`{"reasoning":1,"reasoning":"","fields":[],"line_items":[],"labels":[],"currency":""}`,
		string(good) + ` {}`, `null`, `[]`, ``, "```", `{"reasoning":`,
	}
}

// FuzzRefined: whatever content a model answers is either ErrBadAnswer or
// a proposal that passes label.Validate against the receipt; its amounts
// are the model's (or the printed words') rounded to cents, exactly —
// never a float's approximation nor an overflowed integer.
func FuzzRefined(f *testing.F) {
	for _, s := range fuzzAnswerSeeds(f) {
		f.Add(s)
	}
	r, p := testReceipt(true), rulesProposal()
	f.Fuzz(func(t *testing.T, content string) {
		out, err := refined(r, p, content)
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("refined = %v, want ErrBadAnswer", err)
			}
			return
		}
		if err := label.Validate(r, &out); err != nil {
			t.Fatalf("refined proposal does not validate: %v", err)
		}
		a, err := parseAnswer(content)
		if err != nil {
			t.Fatalf("refined accepted what parseAnswer refuses: %v", err)
		}
		for name, fl := range out.Fields {
			if !label.AmountFields[name] || fl.Source != label.SourceLLM || fl.Value == "" {
				continue
			}
			ok := false
			for _, af := range a.Fields {
				if n, err := label.Canonical(af.Label); err != nil || n != name {
					continue
				}
				ws, _ := refs("", af.Words)
				ok = ok || near(fl.Value, af.Value) || near(fl.Value, r.Text(ws))
			}
			ok = ok || near(fl.Value, fl.Text)
			if !ok {
				t.Fatalf("%s = %q: not the model's amount rounded to cents (%+v)", name, fl.Value, a.Fields)
			}
		}
		if len(a.LineItems) > 0 {
			for i, it := range out.Items {
				ai := a.LineItems[i]
				for _, pr := range [][2]string{{it.Price, ai.Price}, {it.UnitPrice, ai.UnitPrice}, {it.Quantity, ai.Quantity}} {
					if _, err := money.Parse(pr[1]); err == nil && !near(pr[0], pr[1]) {
						t.Fatalf("line item %d: %q became %q", i, pr[1], pr[0])
					}
				}
			}
		}
	})
}

// FuzzDecodeCompletion: a chat completion body is ErrBadResponse or
// ErrBadAnswer, or has non-blank content from a choice that finished.
func FuzzDecodeCompletion(f *testing.F) {
	for _, s := range []string{
		`{"id":"c1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"{}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"choices":[{"message":{"content":"x"}}]}`,
		`{"choices":[{"message":{"content":"x"},"finish_reason":"length"}]}`,
		`{"choices":[{"message":{"content":"x"},"finish_reason":"content_filter"}]}`,
		`{"choices":[{"message":{"content":"x"},"finish_reason":"tool_calls"}]}`,
		`{"choices":[{"message":{"refusal":"no"},"finish_reason":"stop"}]}`,
		`{"choices":[{"message":{"content":"  "},"finish_reason":"stop"}]}`,
		`{"choices":[{"message":{"content":null}}]}`,
		`{"choices":[]}`, `{"error":{"message":"rate limited","type":"x"}}`, `{"error":"boom"}`, ``, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := decodeCompletion(body)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("decodeCompletion = %v, want ErrBadResponse or ErrBadAnswer", err)
			}
			return
		}
		if strings.TrimSpace(c.content) == "" || len(c.Choices) == 0 {
			t.Fatalf("accepted a completion without content: %+v", c)
		}
		if fr := c.Choices[0].FinishReason; fr != "stop" && fr != "" {
			t.Fatalf("accepted finish_reason %q", fr)
		}
	})
}
