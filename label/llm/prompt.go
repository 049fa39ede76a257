package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
)

// SchemaName names the response format's JSON schema in requests.
const SchemaName = "receipt_labels"

// descriptions tell the model what each label means, in label.All's order
// when listed.
var descriptions = map[string]string{
	label.MerchantName:  "the store or business name as printed, usually at the top",
	label.StoreHours:    "opening hours",
	label.PhoneNumber:   "the merchant's phone number",
	label.Website:       "the merchant's web or e-mail address",
	label.LoyaltyID:     "a loyalty, membership or rewards number",
	label.AddressLine:   "the merchant's address: street, city, state, postcode (one or more rows)",
	label.Date:          "the transaction date",
	label.Time:          "the transaction time",
	label.PaymentMethod: "how it was paid: card brand (VISA, MASTERCARD), CASH, DEBIT, the card's last digits",
	label.Coupon:        "a coupon or promotion code",
	label.Discount:      "a discount or savings amount",
	label.ProductName:   "the name of a bought item",
	label.Quantity:      "how many of an item, or its weight",
	label.UnitPrice:     "the price of one unit of an item",
	label.LineTotal:     "the amount charged for one item line",
	label.Subtotal:      "the sum of the items before tax",
	label.Tax:           "a tax amount (sales tax, GST, SST, VAT)",
	label.Tip:           "a tip or gratuity",
	label.GrandTotal:    "the final amount due or paid",
	label.Change:        "change given back",
	label.CashBack:      "cash back taken",
	label.Refund:        "a refund amount",
}

// itemLabels label the words of line items; every other label may be a
// receipt-level field.
var itemLabels = map[string]bool{label.ProductName: true, label.Quantity: true, label.UnitPrice: true, label.LineTotal: true}

// fieldLabels are the labels a field may carry, in label.All's order.
var fieldLabels = func() []string {
	var out []string
	for _, l := range label.All {
		if !itemLabels[l] {
			out = append(out, l)
		}
	}
	return out
}()

// member is one key of an ordered JSON object.
type member struct {
	key string
	val any
}

// object is a JSON object that keeps its keys in order: a model writes
// structured output in the schema's property order, so "reasoning" comes
// first and the answer follows from it.
type object []member

// MarshalJSON writes o's members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.val)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// strictObject is a strict-mode object schema: every property required,
// no others allowed.
func strictObject(desc string, props ...member) object {
	required := make([]string, len(props))
	for i, p := range props {
		required[i] = p.key
	}
	o := object{{"type", "object"}}
	if desc != "" {
		o = append(o, member{"description", desc})
	}
	return append(o, member{"properties", object(props)}, member{"required", required}, member{"additionalProperties", false})
}

func str(desc string) object { return object{{"type", "string"}, {"description", desc}} }

func enum(desc string, values []string) object {
	return object{{"type", "string"}, {"description", desc}, {"enum", values}}
}

func array(desc string, items any) object {
	return object{{"type", "array"}, {"description", desc}, {"items", items}}
}

// wordRefs is the schema of a list of [line_id, word_id] pairs. Strict
// mode has no tuples, so the pair's length is checked on decoding.
func wordRefs(desc string) object {
	return array(desc, object{{"type", "array"}, {"items", object{{"type", "integer"}}}})
}

// schemaJSON is the answer's JSON schema as sent; schema is the same,
// decoded, for checking answers against it.
var schemaJSON, schema = func() (json.RawMessage, map[string]any) {
	s := strictObject("",
		member{"reasoning", str("One or two short sentences: what you changed in the rules' proposal and why.")},
		member{"fields", array("Receipt-level fields, each read from the words named; no words and an empty value remove a field the receipt does not print.", strictObject("",
			member{"label", enum("The field's label.", fieldLabels)},
			member{"words", wordRefs("The [line_id, word_id] pairs the field is printed in, in reading order.")},
			member{"value", str(`The normalized value: amounts as plain decimals ("1234.50", "-3.10"), DATE as YYYY-MM-DD, TIME as HH:MM (24 h), anything else as printed; "" when unknown.`)},
		))},
		member{"line_items", array("Every bought item (and item-level discount) in printed order.", strictObject("",
			member{"name", str("The product name as printed.")},
			member{"quantity", str(`The quantity or weight as a plain decimal; "" when not printed.`)},
			member{"unit_price", str(`The price of one unit as a plain decimal; "" when not printed.`)},
			member{"price", str(`The line total as a plain decimal; "" when not printed.`)},
			member{"is_discount", object{{"type", "boolean"}, {"description", "Whether the line is a discount or coupon rather than a product."}}},
			member{"words", wordRefs("The [line_id, word_id] pairs of the item's words (name, quantity, prices).")},
		))},
		member{"labels", array("One entry per labelled word.", strictObject("",
			member{"line_id", object{{"type", "integer"}}},
			member{"word_id", object{{"type", "integer"}}},
			member{"label", enum("The word's label.", label.All)},
		))},
		member{"currency", str(`The ISO 4217 currency code (USD, MYR, EUR); "" when unknown.`)},
	)
	raw, err := json.Marshal(s)
	if err != nil {
		panic(err) // constant input
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	return raw, m
}()

// systemPrompt explains the task and the labels; it is the same for every
// receipt, so a server's prompt cache can reuse it.
var systemPrompt = func() string {
	var b strings.Builder
	b.WriteString(`You check and correct the labels of one shopping receipt read by OCR.

The user message gives the receipt's words grouped into visual rows, top to bottom, each word written as [line_id,word_id] followed by its text, and a proposal from a rules engine that may be wrong or incomplete.

Answer with the corrected proposal:
- fields: the receipt-level fields the receipt prints, each with the [line_id, word_id] pairs it is printed in and its normalized value. Return every field you keep, the proposal's correct ones too; a field you leave out keeps the proposal's value, and a field you return with no words and an empty value is removed (the receipt does not print it).
- line_items: every bought item in printed order, with its name, quantity, unit price and line total, is_discount for discount and coupon lines, and the pairs of its words.
- labels: one entry per labelled word and label. Label every word you use in fields and line items.
- currency: the ISO 4217 code the receipt's evidence shows.
- reasoning: one or two short sentences.

Rules:
- Use only [line_id, word_id] pairs that appear in the receipt. Never invent words, amounts or dates that are not printed.
- Amounts are plain decimals with a '.' and no currency symbol or thousands separator: "1234.50"; negative amounts start with '-'.
- DATE is YYYY-MM-DD and must be a real date; TIME is HH:MM in 24-hour time.
- Use "" for anything unknown.

Labels:
`)
	for _, l := range label.All {
		b.WriteString("- " + l)
		if d := descriptions[l]; d != "" {
			b.WriteString(": " + d)
		}
		b.WriteByte('\n')
	}
	return b.String()
}()

// Wire types of the request.
type (
	chatMessage struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	jsonSchemaFormat struct {
		Name   string          `json:"name"`
		Strict bool            `json:"strict"`
		Schema json.RawMessage `json:"schema"`
	}
	responseFormat struct {
		Type       string           `json:"type"`
		JSONSchema jsonSchemaFormat `json:"json_schema"`
	}
	chatRequest struct {
		Model               string         `json:"model"`
		Messages            []chatMessage  `json:"messages"`
		ResponseFormat      responseFormat `json:"response_format"`
		MaxCompletionTokens int            `json:"max_completion_tokens,omitempty"`
	}
)

// hint is the rules' proposal as the model reads it, in the answer's own
// shape so that it can copy what is right.
type (
	hintField struct {
		Label string             `json:"label"`
		Text  string             `json:"text"`
		Value string             `json:"value"`
		Words []entities.WordRef `json:"words"`
	}
	hintItem struct {
		Name       string             `json:"name"`
		Quantity   string             `json:"quantity"`
		UnitPrice  string             `json:"unit_price"`
		Price      string             `json:"price"`
		IsDiscount bool               `json:"is_discount"`
		Words      []entities.WordRef `json:"words"`
	}
	hint struct {
		Fields    []hintField `json:"fields"`
		LineItems []hintItem  `json:"line_items"`
		Currency  string      `json:"currency,omitempty"`
		Doubts    []string    `json:"doubts,omitempty"`
	}
)

// requestBody is the one chat completion request for r and p. It is
// deterministic (fields sorted, no timestamps), so the same receipt and
// proposal make the same body and hit the cache.
func (rf *Refiner) requestBody(r label.Receipt, p label.Proposal) ([]byte, error) {
	user, err := userMessage(r, p)
	if err != nil {
		return nil, err
	}
	req := chatRequest{
		Model: rf.model,
		Messages: []chatMessage{
			{Role: "system", Content: systemPrompt},
			{Role: "user", Content: user},
		},
		ResponseFormat: responseFormat{Type: "json_schema",
			JSONSchema: jsonSchemaFormat{Name: SchemaName, Strict: true, Schema: schemaJSON}},
		MaxCompletionTokens: rf.maxCompletionTokens,
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return body, nil
}

// userMessage writes the receipt's rows and the rules' proposal.
func userMessage(r label.Receipt, p label.Proposal) (string, error) {
	var b strings.Builder
	b.WriteString("Receipt rows, top to bottom (each word is [line_id,word_id] text):\n")
	for _, ws := range rowWords(r) {
		for i, w := range ws {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "[%d,%d] %s", w.LineID, w.WordID, w.Text)
		}
		b.WriteByte('\n')
	}
	h := hint{Fields: []hintField{}, LineItems: []hintItem{}, Currency: p.Currency, Doubts: p.Doubts}
	for _, k := range sortedLabels(p.Fields) {
		f := p.Fields[k]
		if f.Text == "" && f.Value == "" && len(f.Words) == 0 {
			continue
		}
		h.Fields = append(h.Fields, hintField{Label: k, Text: f.Text, Value: f.Value, Words: nonNil(f.Words)})
	}
	for _, it := range p.Items {
		h.LineItems = append(h.LineItems, hintItem{Name: it.Name, Quantity: it.Quantity, UnitPrice: it.UnitPrice,
			Price: it.Price, IsDiscount: it.IsDiscount, Words: nonNil(it.WordRefs)})
	}
	js, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode the rules' proposal: %w", err)
	}
	b.WriteString("\nRules engine proposal (JSON):\n")
	b.Write(js)
	b.WriteByte('\n')
	return b.String(), nil
}

func nonNil(refs []entities.WordRef) []entities.WordRef {
	if refs == nil {
		return []entities.WordRef{}
	}
	return refs
}

// sortedLabels orders a proposal's field keys as label.All does (unknown
// names last, alphabetically), so the request does not depend on map order.
func sortedLabels(fields map[string]entities.SummaryField) []string {
	rank := func(k string) int {
		if i := slices.Index(label.All, k); i >= 0 {
			return i
		}
		return len(label.All)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// rowWords returns the receipt's words row by row in reading order: its
// stored rows (grouped afresh when there are none), then any line no row
// holds, one row each, so that no word goes unseen.
func rowWords(r label.Receipt) [][]entities.ReceiptWord {
	rows := r.Rows
	if len(rows) == 0 {
		rows = entities.GroupRows(r.Lines, r.Width, r.Height)
	}
	var out [][]entities.ReceiptWord
	covered := map[int]bool{}
	for _, row := range rows {
		for _, id := range row.LineIDs {
			covered[id] = true
		}
		if ws := r.RowWords(row); len(ws) > 0 {
			out = append(out, ws)
		}
	}
	var rest []int
	for _, w := range r.Words {
		if !covered[w.LineID] {
			covered[w.LineID] = true
			rest = append(rest, w.LineID)
		}
	}
	sort.Ints(rest)
	for _, id := range rest {
		if ws := r.RowWords(entities.ReceiptRow{LineIDs: []int{id}}); len(ws) > 0 {
			out = append(out, ws)
		}
	}
	return out
}
