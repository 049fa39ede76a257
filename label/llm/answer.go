package llm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/openaihttp"
	"github.com/tallyhq/tally/label"
)

// completionResponse is the part of a chat completion Refine reads.
type completionResponse struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Message struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
			Refusal *string `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// completion is a decoded 200 response: its id and usage for the log, and
// the answer's JSON text.
type completion struct {
	completionResponse
	content string
}

// decodeCompletion takes the first choice's content out of a 200 body,
// refusing truncated, refused and empty answers.
func decodeCompletion(body []byte) (completion, error) {
	var c completion
	if err := json.Unmarshal(body, &c.completionResponse); err != nil {
		return c, fmt.Errorf("%w: malformed JSON: %v", ErrBadResponse, err)
	}
	if len(c.Choices) == 0 {
		if msg := openaihttp.ErrorMessage(body); msg != "" {
			return c, fmt.Errorf("%w: no choices (server said %q)", ErrBadResponse, msg)
		}
		return c, fmt.Errorf("%w: no choices", ErrBadResponse)
	}
	ch := c.Choices[0]
	if ch.Message.Refusal != nil && *ch.Message.Refusal != "" {
		return c, fmt.Errorf("%w: %w: %q", ErrBadAnswer, ErrRefused, *ch.Message.Refusal)
	}
	switch ch.FinishReason {
	case "stop", "": // "" from compatible servers that leave it out
	case "length":
		return c, fmt.Errorf("%w: %w: the answer reached the token limit", ErrBadAnswer, ErrTruncated)
	case "content_filter":
		return c, fmt.Errorf("%w: %w: the content filter stopped the answer", ErrBadAnswer, ErrRefused)
	default:
		return c, fmt.Errorf("%w: finish_reason %q, want stop", ErrBadAnswer, ch.FinishReason)
	}
	if ch.Message.Content == nil || strings.TrimSpace(*ch.Message.Content) == "" {
		return c, fmt.Errorf("%w: empty content", ErrBadAnswer)
	}
	c.content = *ch.Message.Content
	return c, nil
}

// Wire types of the answer, as the schema describes it.
type (
	answerField struct {
		Label string  `json:"label"`
		Words [][]int `json:"words"`
		Value string  `json:"value"`
	}
	answerItem struct {
		Name       string  `json:"name"`
		Quantity   string  `json:"quantity"`
		UnitPrice  string  `json:"unit_price"`
		Price      string  `json:"price"`
		IsDiscount bool    `json:"is_discount"`
		Words      [][]int `json:"words"`
	}
	answerLabel struct {
		LineID int    `json:"line_id"`
		WordID int    `json:"word_id"`
		Label  string `json:"label"`
	}
	answer struct {
		Reasoning string        `json:"reasoning"`
		Fields    []answerField `json:"fields"`
		LineItems []answerItem  `json:"line_items"`
		Labels    []answerLabel `json:"labels"`
		Currency  string        `json:"currency"`
	}
)

// parseAnswer decodes content and checks it against the schema sent: a
// strict server guarantees it, a compatible one may not.
func parseAnswer(content string) (answer, error) {
	var a answer
	text := strings.TrimSpace(content)
	// Models without structured outputs like to fence their JSON.
	if strings.HasPrefix(text, "```") {
		text = strings.TrimPrefix(strings.TrimPrefix(text, "```json"), "```")
		text = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), "```"))
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return a, fmt.Errorf("%w: content is not JSON: %v", ErrBadAnswer, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return a, fmt.Errorf("%w: content has data after its JSON value", ErrBadAnswer)
	}
	if err := conform(schema, v, "answer"); err != nil {
		return a, fmt.Errorf("%w: content does not match the schema: %v", ErrBadAnswer, err)
	}
	if err := json.Unmarshal([]byte(text), &a); err != nil {
		return a, fmt.Errorf("%w: content does not match the schema: %v", ErrBadAnswer, err)
	}
	return a, nil
}

// conform checks v (decoded with UseNumber) against the subset of JSON
// Schema this package writes: object, array, string with enum, integer,
// boolean.
func conform(s map[string]any, v any, path string) error {
	switch typ, _ := s["type"].(string); typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %s", path, kind(v))
		}
		props, _ := s["properties"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			sub, ok := props[k].(map[string]any)
			if !ok {
				return fmt.Errorf("%s: unexpected property %q", path, k)
			}
			if err := conform(sub, obj[k], path+"."+k); err != nil {
				return err
			}
		}
		required, _ := s["required"].([]any)
		for _, r := range required {
			k, _ := r.(string)
			if _, present := obj[k]; !present {
				return fmt.Errorf("%s: missing property %q", path, k)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %s", path, kind(v))
		}
		sub, _ := s["items"].(map[string]any)
		for i, e := range arr {
			if err := conform(sub, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %s", path, kind(v))
		}
		if values, ok := s["enum"].([]any); ok && !slices.Contains(values, any(str)) {
			return fmt.Errorf("%s: %q is not one of the allowed values", path, str)
		}
	case "integer":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return fmt.Errorf("%s: want an integer, got %s", path, kind(v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want a boolean, got %s", path, kind(v))
		}
	}
	return nil
}

// kind names a decoded JSON value's type for error messages.
func kind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + x.String()
	}
	return fmt.Sprintf("%T", v)
}

// refined builds the new proposal from p and the model's answer and
// validates it; any problem is ErrBadAnswer and no proposal.
func refined(r label.Receipt, p label.Proposal, content string) (label.Proposal, error) {
	a, err := parseAnswer(content)
	if err != nil {
		return label.Proposal{}, err
	}
	out, err := merge(r, p, a)
	if err != nil {
		return label.Proposal{}, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	if err := label.Validate(r, &out); err != nil {
		return label.Proposal{}, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return out, nil
}

// errBadRef marks a word reference that is not a [line_id, word_id] pair.
var errBadRef = errors.New("a word reference is not a [line_id, word_id] pair")

// refs turns the answer's pairs into word refs.
func refs(where string, pairs [][]int) ([]entities.WordRef, error) {
	out := make([]entities.WordRef, 0, len(pairs))
	for _, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("%s: %w: %v", where, errBadRef, p)
		}
		out = append(out, entities.WordRef{p[0], p[1]})
	}
	return out, nil
}

// merge lays the answer over a copy of p: the model's fields replace the
// rules' of the same label (an empty one removes it; the fields it does
// not name stay), its labels replace the rules' on the words it labels or
// uses in a field, its items replace the rules' when it gives any. Texts
// come from the receipt's words; values are normalized. It does not
// validate: refined does, on the whole result.
func merge(r label.Receipt, p label.Proposal, a answer) (label.Proposal, error) {
	out := label.Proposal{
		Fields:    make(map[string]entities.SummaryField, len(p.Fields)+len(a.Fields)),
		Rounding:  p.Rounding,
		Currency:  p.Currency,
		Country:   p.Country,
		CardLast4: p.CardLast4,
		Doubts:    slices.Clone(p.Doubts),
		Source:    label.SourceLLM,
	}
	if p.Source != "" {
		out.Source = p.Source + "+" + label.SourceLLM
	}
	for k, f := range p.Fields {
		f.Words = slices.Clone(f.Words)
		out.Fields[k] = f
	}

	// Fields. A label given twice (an address over two rows) is one field
	// with both parts' words; one given with neither words nor value is
	// one the receipt does not print, and the rules' field goes.
	answered := map[string]bool{}
	removed := map[string]entities.SummaryField{}
	for i, f := range a.Fields {
		name, err := label.Canonical(f.Label)
		if err != nil {
			return out, fmt.Errorf("field %d: %w", i, err)
		}
		words, err := refs("field "+name, f.Words)
		if err != nil {
			return out, err
		}
		value := strings.TrimSpace(f.Value)
		if value == "" && len(words) == 0 {
			if prev, ok := out.Fields[name]; ok && !answered[name] {
				removed[name] = prev
				delete(out.Fields, name)
			}
			continue
		}
		if answered[name] {
			prev := out.Fields[name]
			words = append(slices.Clone(prev.Words), words...)
			switch {
			case prev.Value == "":
			case value == "" || label.AmountFields[name] || name == label.Date || name == label.Time:
				value = prev.Value
			default:
				value = prev.Value + " " + value
			}
		}
		answered[name] = true
		text := r.Text(words)
		if value == "" && name != label.Date {
			value = text
		}
		if amt, err := label.ParseAmount(value); err == nil && label.AmountFields[name] {
			value = amt.Fixed(2) // what does not parse stays, for label.Validate to reject
		}
		out.Fields[name] = entities.SummaryField{Text: text, Value: value, Words: words,
			Confidence: Confidence, Source: label.SourceLLM}
	}

	// Labels: the model's, then the words of its fields, then the rules'
	// on words the model left alone, but for those of removed fields.
	type key struct {
		ref   entities.WordRef
		label string
	}
	seen := map[key]bool{}
	dropped := map[key]bool{}
	for name, f := range removed {
		for _, ref := range f.Words {
			dropped[key{ref, name}] = true
		}
	}
	byModel := map[entities.WordRef]bool{}
	add := func(l label.WordLabel) {
		if k := (key{l.Word, l.Label}); !seen[k] {
			seen[k] = true
			out.Labels = append(out.Labels, l)
		}
	}
	for _, l := range a.Labels {
		ref := entities.WordRef{l.LineID, l.WordID}
		byModel[ref] = true
		add(label.WordLabel{Word: ref, Label: l.Label, Confidence: Confidence, Source: label.SourceLLM})
	}
	for _, name := range slices.Sorted(maps.Keys(answered)) {
		for _, ref := range out.Fields[name].Words {
			byModel[ref] = true
			add(label.WordLabel{Word: ref, Label: name, Confidence: Confidence, Source: label.SourceLLM})
		}
	}
	for _, l := range p.Labels {
		if !byModel[l.Word] && !dropped[key{l.Word, l.Label}] {
			add(l)
		}
	}
	sort.SliceStable(out.Labels, func(i, j int) bool {
		a, b := out.Labels[i].Word, out.Labels[j].Word
		return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1])
	})

	// Line items.
	if len(a.LineItems) == 0 {
		for _, it := range p.Items {
			it.LineIDs, it.WordRefs = slices.Clone(it.LineIDs), slices.Clone(it.WordRefs)
			out.Items = append(out.Items, it)
		}
	}
	for i, it := range a.LineItems {
		words, err := refs(fmt.Sprintf("line item %d", i), it.Words)
		if err != nil {
			return out, err
		}
		raw := r.Text(words)
		name := strings.TrimSpace(it.Name)
		if name == "" {
			name = raw
		}
		out.Items = append(out.Items, entities.ReceiptLineItem{
			ImageID: r.ImageID, ReceiptID: r.ReceiptID, ItemIndex: i,
			Name:       name,
			Quantity:   normalizeAmount(it.Quantity, false),
			UnitPrice:  normalizeAmount(it.UnitPrice, true),
			Price:      normalizeAmount(it.Price, true),
			LineIDs:    lineIDs(words),
			WordRefs:   words,
			IsDiscount: it.IsDiscount,
			RawText:    raw,
		})
	}

	if c := strings.ToUpper(strings.TrimSpace(a.Currency)); isCurrencyCode(c) {
		out.Currency = c
	}
	return out, nil
}

// normalizeAmount writes an amount as a plain decimal: money's own form,
// with at least two places when cents is set ("12.5" → "12.50", a unit
// price's "0.899" stays). Text that is no amount is returned trimmed, for
// label.Validate to reject.
func normalizeAmount(s string, cents bool) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	a, err := label.ParseAmount(s)
	if err != nil {
		return s
	}
	out := a.String()
	if dot := strings.IndexByte(out, '.'); cents && (dot < 0 || len(out)-dot-1 < 2) {
		out = a.Fixed(2)
	}
	return out
}

// lineIDs lists the distinct lines of refs, in order.
func lineIDs(refs []entities.WordRef) []int {
	ids := []int{}
	for _, ref := range refs {
		if !slices.Contains(ids, ref[0]) {
			ids = append(ids, ref[0])
		}
	}
	sort.Ints(ids)
	return ids
}

// isCurrencyCode reports whether c looks like an ISO 4217 code.
func isCurrencyCode(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := range len(c) {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}
