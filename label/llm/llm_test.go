package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fakes"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
)

func TestRefineGoodAnswer(t *testing.T) {
	t.Parallel()
	chat := fakes.NewChat(t, always(reply(mustJSON(t, goodAnswer()), "stop")))
	rf, _ := newTestRefiner(t, chat.URL, Options{})
	r, p := testReceipt(true), rulesProposal()
	before := rulesProposal()

	got, err := rf.Refine(context.Background(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, before) {
		t.Errorf("Refine changed the proposal it was given:\n%+v\nwant\n%+v", p, before)
	}
	if got.Source != "rules+llm" {
		t.Errorf("Source = %q, want rules+llm", got.Source)
	}
	if got.Currency != "USD" {
		t.Errorf("Currency = %q, want USD", got.Currency)
	}
	if !slices.Equal(got.Doubts, p.Doubts) {
		t.Errorf("Doubts = %q, want the rules' %q", got.Doubts, p.Doubts)
	}

	llm := func(text, value string, words ...[2]int) entities.SummaryField {
		return entities.SummaryField{Text: text, Value: value, Words: wordRefsOf(words...), Confidence: Confidence, Source: label.SourceLLM}
	}
	wantFields := map[string]entities.SummaryField{
		// Text is what is printed, Value the model's normalized reading.
		label.MerchantName: llm("WALMART", "Walmart", [2]int{1, 1}),
		label.AddressLine:  llm("123 MAIN ST", "123 Main St", [2]int{2, 1}, [2]int{2, 2}, [2]int{2, 3}),
		label.Date:         llm("12/25/2023", "2023-12-25", [2]int{3, 1}),
		label.Time:         llm("14:30", "14:30", [2]int{3, 2}),
		label.Subtotal:     llm("5.99", "5.99", [2]int{6, 2}),
		label.Tax:          llm("0.48", "0.48", [2]int{7, 2}),
		label.GrandTotal:   llm("6.47", "6.47", [2]int{9, 1}),
		// Not in the answer: the rules' field stays as it was.
		label.PaymentMethod: p.Fields[label.PaymentMethod],
	}
	if !reflect.DeepEqual(got.Fields, wantFields) {
		for k := range wantFields {
			if !reflect.DeepEqual(got.Fields[k], wantFields[k]) {
				t.Errorf("field %s = %+v, want %+v", k, got.Fields[k], wantFields[k])
			}
		}
		for k := range got.Fields {
			if _, ok := wantFields[k]; !ok {
				t.Errorf("unexpected field %s = %+v", k, got.Fields[k])
			}
		}
	}

	wantItems := []entities.ReceiptLineItem{
		{ImageID: "img-1", ReceiptID: 1, ItemIndex: 0, Name: "Milk", Price: "3.49", LineIDs: []int{4},
			WordRefs: wordRefsOf([2]int{4, 1}, [2]int{4, 2}), RawText: "MILK 3.49"},
		{ImageID: "img-1", ReceiptID: 1, ItemIndex: 1, Name: "Bread", Quantity: "1", Price: "2.50", LineIDs: []int{5},
			WordRefs: wordRefsOf([2]int{5, 1}, [2]int{5, 2}), RawText: "BREAD 2.50"},
	}
	if !reflect.DeepEqual(got.Items, wantItems) {
		t.Errorf("items:\n%+v\nwant\n%+v", got.Items, wantItems)
	}

	type wl struct {
		ref           entities.WordRef
		label, source string
	}
	var gotLabels []wl
	for _, l := range got.Labels {
		gotLabels = append(gotLabels, wl{l.Word, l.Label, l.Source})
		if l.Source == label.SourceLLM && l.Confidence != Confidence {
			t.Errorf("label %v %s has confidence %v, want %v", l.Word, l.Label, l.Confidence, Confidence)
		}
	}
	llmL := func(line, word int, l string) wl { return wl{entities.WordRef{line, word}, l, label.SourceLLM} }
	wantLabels := []wl{
		llmL(1, 1, label.MerchantName),
		llmL(2, 1, label.AddressLine), llmL(2, 2, label.AddressLine), llmL(2, 3, label.AddressLine),
		llmL(3, 1, label.Date), llmL(3, 2, label.Time),
		llmL(4, 1, label.ProductName), llmL(4, 2, label.LineTotal),
		llmL(5, 1, label.ProductName), llmL(5, 2, label.LineTotal),
		// The rules' GRAND_TOTAL on 5.99 is gone: the model's field says SUBTOTAL.
		llmL(6, 2, label.Subtotal), llmL(7, 2, label.Tax),
		llmL(9, 1, label.GrandTotal),
		// A word the model left alone keeps the rules' label.
		{entities.WordRef{10, 1}, label.PaymentMethod, label.SourceRules},
	}
	if !reflect.DeepEqual(gotLabels, wantLabels) {
		t.Errorf("labels:\n%v\nwant\n%v", gotLabels, wantLabels)
	}

	// The refined proposal adds up: the summary's only reason for review
	// is the rules' doubt, which the model cannot clear.
	u := label.Summarize(r, got, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if !slices.Equal(u.Summary.ReviewReasons, p.Doubts) || u.Summary.ProposedBy != "rules+llm" {
		t.Errorf("summary review reasons %q by %q, want only %q by rules+llm", u.Summary.ReviewReasons, u.Summary.ProposedBy, p.Doubts)
	}
	for _, c := range u.Summary.Checks {
		if c.Status != entities.CheckPass {
			t.Errorf("check %+v did not pass", c)
		}
	}
	if rf.Requests() != 1 || chat.Requests() != 1 {
		t.Errorf("Requests() = %d, server saw %d, want 1", rf.Requests(), chat.Requests())
	}
}

// TestRequest checks the one request against the Chat Completions format:
// the fake server already refused anything malformed or a strict schema
// that is not strict.
func TestRequest(t *testing.T) {
	t.Parallel()
	chat := fakes.NewChat(t, always(reply(mustJSON(t, goodAnswer()), "stop")))
	rf, _ := newTestRefiner(t, chat.URL, Options{MaxCompletionTokens: 4000})
	if _, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal()); err != nil {
		t.Fatal(err)
	}
	seen := chat.Seen()
	if len(seen) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(seen))
	}
	req := seen[0]
	if req.Model != testModel || req.Auth != "Bearer sk-test" || req.MaxCompletionTokens != 4000 {
		t.Errorf("model %q, auth %q, max_completion_tokens %d", req.Model, req.Auth, req.MaxCompletionTokens)
	}
	if len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Role != "user" {
		t.Fatalf("messages %+v, want system then user", req.Messages)
	}
	for _, l := range label.All {
		if !strings.Contains(req.Messages[0].Content, "- "+l) {
			t.Errorf("system message does not explain %s", l)
		}
	}
	user := req.Messages[1].Content
	for _, want := range []string{
		"[1,1] WALMART\n",
		"[2,1] 123 [2,2] MAIN [2,3] ST\n",
		"[8,1] TOTAL [9,1] 6.47\n", // one row of two lines, in reading order
		`{"label":"GRAND_TOTAL","text":"5.99","value":"5.99","words":[[6,2]]}`,
		`"line_items":[{"name":"MILK","quantity":"","unit_price":"","price":"3.49","is_discount":false,"words":[[4,1],[4,2]]}]`,
		`"doubts":["two amounts could be the total: 5.99, 6.47"]`,
	} {
		if !strings.Contains(user, want) {
			t.Errorf("user message lacks %q:\n%s", want, user)
		}
	}
	rf2 := req.ResponseFormat
	if rf2 == nil || rf2.Type != "json_schema" || rf2.JSONSchema == nil || rf2.JSONSchema.Name != SchemaName || !rf2.JSONSchema.Strict {
		t.Fatalf("response_format %+v, want a strict json_schema", rf2)
	}
	props, _ := rf2.JSONSchema.Schema["properties"].(map[string]any)
	var keys []string
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"currency", "fields", "labels", "line_items", "reasoning"}; !slices.Equal(keys, want) {
		t.Errorf("schema properties %v, want %v", keys, want)
	}
	// The proposal's fields are listed in label order whatever the map's.
	if i, j := strings.Index(user, `"MERCHANT_NAME"`), strings.Index(user, `"GRAND_TOTAL"`); i < 0 || j < i {
		t.Errorf("fields not in label order:\n%s", user)
	}
}

// TestRequestWithoutRows: a receipt whose rows were never stored has them
// grouped from the lines' geometry.
func TestRequestWithoutRows(t *testing.T) {
	t.Parallel()
	chat := fakes.NewChat(t, always(reply(mustJSON(t, goodAnswer()), "stop")))
	rf, _ := newTestRefiner(t, chat.URL, Options{})
	if _, err := rf.Refine(context.Background(), testReceipt(false), rulesProposal()); err != nil {
		t.Fatal(err)
	}
	user := chat.Seen()[0].Messages[1].Content
	if !strings.Contains(user, "[8,1] TOTAL [9,1] 6.47\n") || !strings.Contains(user, "[10,1] VISA [10,2] 1234\n") {
		t.Errorf("rows not grouped from the lines:\n%s", user)
	}
}

func TestRefineBadAnswers(t *testing.T) {
	t.Parallel()
	good := goodAnswer()
	goodJSON := mustJSON(t, good)
	fields := func(fs ...any) ans { return with(good, "fields", fs) }
	tests := []struct {
		name  string
		reply fakes.ChatReply
		want  []error
	}{
		{"not JSON", reply("Sure! The total is 6.47.", "stop"), []error{ErrBadAnswer}},
		{"two JSON values", reply(goodJSON+" {}", "stop"), []error{ErrBadAnswer}},
		{"truncated", reply(goodJSON[:len(goodJSON)/2], "length"), []error{ErrBadAnswer, ErrTruncated}},
		{"refused", fakes.ChatReply{Body: fakes.ChatRefusal(testModel, "I'm sorry, I can't help with that.")}, []error{ErrBadAnswer, ErrRefused}},
		{"content filter", reply("", "content_filter"), []error{ErrBadAnswer, ErrRefused}},
		{"tool call", reply(goodJSON, "tool_calls"), []error{ErrBadAnswer}},
		{"empty content", reply("", "stop"), []error{ErrBadAnswer}},
		{"missing property", reply(`{"reasoning":"","fields":[],"labels":[],"currency":""}`, "stop"), []error{ErrBadAnswer}},
		{"extra property", reply(mustJSON(t, with(good, "confidence", 0.9)), "stop"), []error{ErrBadAnswer}},
		{"wrong type", reply(mustJSON(t, with(good, "labels", "none")), "stop"), []error{ErrBadAnswer}},
		{"label outside the enum", reply(mustJSON(t, fields(field("TOTAL_AMOUNT", [][2]int{{9, 1}}, "6.47"))), "stop"), []error{ErrBadAnswer}},
		{"word pair of three", reply(mustJSON(t, fields(ans{"label": label.GrandTotal, "words": []any{[]int{9, 1, 1}}, "value": "6.47"})), "stop"), []error{ErrBadAnswer}},
		{"field names a word that does not exist", reply(mustJSON(t, fields(field(label.GrandTotal, [][2]int{{99, 1}}, "6.47"))), "stop"),
			[]error{ErrBadAnswer, label.ErrInvalidProposal, label.ErrUnknownWord}},
		{"label names a word that does not exist", reply(mustJSON(t, with(good, "labels", []any{wordLabel(4, 7, label.ProductName)})), "stop"),
			[]error{ErrBadAnswer, label.ErrInvalidProposal, label.ErrUnknownWord}},
		{"item names a word that does not exist", reply(mustJSON(t, with(good, "line_items", []any{
			ans{"name": "Milk", "quantity": "", "unit_price": "", "price": "3.49", "is_discount": false, "words": pairs([][2]int{{4, 3}})}})), "stop"),
			[]error{ErrBadAnswer, label.ErrInvalidProposal, label.ErrUnknownWord}},
		{"amount that does not parse", reply(mustJSON(t, fields(field(label.GrandTotal, [][2]int{{9, 1}}, "six forty-seven"))), "stop"),
			[]error{ErrBadAnswer, label.ErrInvalidProposal}},
		{"item price that does not parse", reply(mustJSON(t, with(good, "line_items", []any{
			ans{"name": "Milk", "quantity": "", "unit_price": "", "price": "3,49,9x", "is_discount": false, "words": pairs([][2]int{{4, 1}, {4, 2}})}})), "stop"),
			[]error{ErrBadAnswer, label.ErrInvalidProposal}},
		{"impossible date", reply(mustJSON(t, fields(field(label.Date, [][2]int{{3, 1}}, "2019-02-30"))), "stop"),
			[]error{ErrBadAnswer, label.ErrInvalidProposal}},
		{"date not ISO", reply(mustJSON(t, fields(field(label.Date, [][2]int{{3, 1}}, "12/25/2023"))), "stop"),
			[]error{ErrBadAnswer, label.ErrInvalidProposal}},
		{"not a chat completion", fakes.ChatReply{Body: `{"object":"list","data":[]}`}, []error{ErrBadResponse}},
		{"not JSON at all", fakes.ChatReply{Body: `<html>oops</html>`}, []error{ErrBadResponse}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			chat := fakes.NewChat(t, always(tt.reply))
			tbl := openTable(t)
			rf, _ := newTestRefiner(t, chat.URL, Options{Table: tbl})
			got, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal())
			if err == nil {
				t.Fatalf("Refine succeeded with %+v", got)
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("error %v does not wrap %v", err, want)
				}
			}
			if !reflect.DeepEqual(got, label.Proposal{}) {
				t.Errorf("Refine returned %+v with its error, want the zero proposal", got)
			}
			if rf.Requests() != 1 {
				t.Errorf("Requests() = %d, want 1 (a bad answer is not retried)", rf.Requests())
			}
			// A bad answer is not cached: asking again asks the model.
			if _, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal()); err == nil {
				t.Fatal("second Refine succeeded")
			}
			if rf.Requests() != 2 || rf.CacheHits() != 0 {
				t.Errorf("after a second call Requests() = %d, CacheHits() = %d, want 2 and 0", rf.Requests(), rf.CacheHits())
			}
		})
	}
}

// TestRefineLenientAnswers: what a compatible server without structured
// outputs may send and is still usable.
func TestRefineLenientAnswers(t *testing.T) {
	t.Parallel()
	goodJSON := mustJSON(t, goodAnswer())
	for name, rep := range map[string]fakes.ChatReply{
		"fenced":           reply("```json\n"+goodJSON+"\n```", "stop"),
		"no finish reason": reply(goodJSON, ""),
		"empty answer":     reply(`{"reasoning":"","fields":[],"line_items":[],"labels":[],"currency":""}`, "stop"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			chat := fakes.NewChat(t, always(rep))
			rf, _ := newTestRefiner(t, chat.URL, Options{})
			got, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal())
			if err != nil {
				t.Fatal(err)
			}
			if name == "empty answer" {
				// Nothing said: the rules' proposal, marked as seen by the model.
				want := rulesProposal()
				want.Source = "rules+llm"
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %+v\nwant %+v", got, want)
				}
			} else if got.Fields[label.GrandTotal].Value != "6.47" {
				t.Errorf("grand total %+v", got.Fields[label.GrandTotal])
			}
		})
	}
}

func TestRefineNoWords(t *testing.T) {
	t.Parallel()
	chat := fakes.NewChat(t, always(reply(mustJSON(t, goodAnswer()), "stop")))
	rf, _ := newTestRefiner(t, chat.URL, Options{})
	p := label.Proposal{Doubts: []string{"no text"}, Source: label.SourceRules}
	got, err := rf.Refine(context.Background(), label.Receipt{ImageID: "img-2", ReceiptID: 1}, p)
	if err != nil || !reflect.DeepEqual(got, p) || chat.Requests() != 0 {
		t.Errorf("Refine = %+v, %v after %d requests; want the proposal unchanged, no request", got, err, chat.Requests())
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	good := reply(mustJSON(t, goodAnswer()), "stop")
	errReply := func(status int, header map[string]string, msg, code string) fakes.ChatReply {
		return fakes.ChatReply{Status: status, Header: header, Body: fakes.ChatError(msg, "server_error", code)}
	}
	tests := []struct {
		name       string
		maxRetries int
		steps      []fakes.ChatReply
		wantErr    error
		wantSleeps []time.Duration
		wantCalls  int64
	}{
		{name: "500 then success", steps: []fakes.ChatReply{errReply(500, nil, "The server had an error while processing your request.", ""), good},
			wantSleeps: []time.Duration{250 * time.Millisecond}, wantCalls: 2},
		{name: "429 with Retry-After", steps: []fakes.ChatReply{errReply(429, map[string]string{"Retry-After": "2"}, "Rate limit reached", "rate_limit_exceeded"), good},
			wantSleeps: []time.Duration{2 * time.Second}, wantCalls: 2},
		{name: "408 then 503 then success", steps: []fakes.ChatReply{errReply(408, nil, "timeout", ""), errReply(503, nil, "overloaded", ""), good},
			wantSleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, wantCalls: 3},
		{name: "503 on every attempt", maxRetries: 2, steps: []fakes.ChatReply{errReply(503, nil, "overloaded", "")},
			wantErr: ErrUnavailable, wantSleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, wantCalls: 3},
		{name: "401 is not retried", steps: []fakes.ChatReply{{Status: 401, Body: fakes.ChatError("Incorrect API key provided: sk-test.", "invalid_request_error", "invalid_api_key")}},
			wantErr: ErrRejected, wantCalls: 1},
		{name: "400 is not retried", steps: []fakes.ChatReply{{Status: 400, Body: fakes.ChatError("Invalid schema for response_format", "invalid_request_error", "")}},
			wantErr: ErrRejected, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			chat := fakes.NewChat(t, script(tt.steps...))
			rf, rec := newTestRefiner(t, chat.URL, Options{MaxRetries: tt.maxRetries})
			got, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal())
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error = %v, want success", err)
			case tt.wantErr == nil && got.Fields[label.GrandTotal].Value != "6.47":
				t.Errorf("grand total %+v", got.Fields[label.GrandTotal])
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if rf.Requests() != tt.wantCalls || chat.Requests() != tt.wantCalls {
				t.Errorf("Requests() = %d, server saw %d, want %d", rf.Requests(), chat.Requests(), tt.wantCalls)
			}
			if got := rec.durations(); !slices.Equal(got, tt.wantSleeps) {
				t.Errorf("slept %v, want %v", got, tt.wantSleeps)
			}
		})
	}
	t.Run("rejection carries the server's message", func(t *testing.T) {
		t.Parallel()
		chat := fakes.NewChat(t, always(fakes.ChatReply{Status: 401, Body: fakes.ChatError("Incorrect API key provided: sk-test.", "invalid_request_error", "invalid_api_key")}))
		rf, _ := newTestRefiner(t, chat.URL, Options{})
		_, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal())
		if !strings.Contains(err.Error(), "invalid_api_key: Incorrect API key provided") || !strings.Contains(err.Error(), "img-1/1") {
			t.Errorf("error %q lacks the server's message or the receipt", err)
		}
	})
}

// TestServerDown: nothing listens, every attempt is refused, and the
// retries (their waits recorded, not slept) end in ErrUnavailable.
func TestServerDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	rf, rec := newTestRefiner(t, "http://"+addr+"/v1", Options{MaxRetries: 2})
	start := time.Now()
	_, err = rf.Refine(context.Background(), testReceipt(true), rulesProposal())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("error = %v, want ErrUnavailable after 3 attempts", err)
	}
	if rf.Requests() != 3 || len(rec.durations()) != 2 {
		t.Errorf("Requests() = %d, slept %v; want 3 attempts and 2 waits", rf.Requests(), rec.durations())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestCanceled(t *testing.T) {
	t.Parallel()
	chat := fakes.NewChat(t, always(reply(mustJSON(t, goodAnswer()), "stop")))
	rf, _ := newTestRefiner(t, chat.URL, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rf.Refine(ctx, testReceipt(true), rulesProposal()); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if chat.Requests() != 0 {
		t.Errorf("server saw %d requests", chat.Requests())
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	chat := fakes.NewChat(t, always(reply(mustJSON(t, goodAnswer()), "stop")))
	tbl := openTable(t)
	rf, _ := newTestRefiner(t, chat.URL, Options{Table: tbl, CacheTTL: time.Hour})
	ctx := context.Background()

	first, err := rf.Refine(ctx, testReceipt(true), rulesProposal())
	if err != nil {
		t.Fatal(err)
	}
	// A redelivered receipt: same receipt, same rules' proposal.
	second, err := rf.Refine(ctx, testReceipt(true), rulesProposal())
	if err != nil {
		t.Fatal(err)
	}
	if chat.Requests() != 1 || rf.Requests() != 1 || rf.CacheHits() != 1 {
		t.Errorf("server saw %d, Requests() %d, CacheHits() %d; want 1, 1, 1", chat.Requests(), rf.Requests(), rf.CacheHits())
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("cached answer differs:\n%+v\n%+v", first, second)
	}

	// Another Refiner on the same table (another process) hits too.
	rf2, _ := newTestRefiner(t, chat.URL, Options{Table: tbl})
	if _, err := rf2.Refine(ctx, testReceipt(true), rulesProposal()); err != nil || rf2.Requests() != 0 || rf2.CacheHits() != 1 {
		t.Errorf("second refiner: %v, %d requests, %d hits; want 0 requests, 1 hit", err, rf2.Requests(), rf2.CacheHits())
	}

	// A different proposal is a different question.
	p := rulesProposal()
	p.Fields[label.GrandTotal] = entities.SummaryField{Text: "6.47", Value: "6.47", Words: wordRefsOf([2]int{9, 1}), Source: label.SourceRules}
	if _, err := rf.Refine(ctx, testReceipt(true), p); err != nil {
		t.Fatal(err)
	}
	if chat.Requests() != 2 {
		t.Errorf("server saw %d requests, want 2", chat.Requests())
	}

	// A different model never shares entries.
	rf3, _ := newTestRefiner(t, chat.URL, Options{Table: tbl, Model: "other-model"})
	if _, err := rf3.Refine(ctx, testReceipt(true), rulesProposal()); err != nil || rf3.Requests() != 1 {
		t.Errorf("other model: %v, %d requests; want 1", err, rf3.Requests())
	}

	// The entries: typed, expiring, keyed by model.
	page, err := tbl.Query(ctx, items.Query{PK: "LLM#" + testModel})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 {
		t.Fatalf("%d entries for %s, want 2", len(page.Items), testModel)
	}
	for _, it := range page.Items {
		ttl, ok := items.TTLOf(it)
		if it[items.AttrType] != CacheItemType || !ok || ttl < time.Now().Unix() || ttl > time.Now().Add(time.Hour+time.Minute).Unix() ||
			!strings.HasPrefix(it.Key().SK, "REQUEST#") || len(it.Key().SK) != len("REQUEST#")+64 {
			t.Errorf("entry %v", it)
		}
		var a map[string]any
		if s, _ := it["content"].(string); json.Unmarshal([]byte(s), &a) != nil {
			t.Errorf("entry content %q is not the answer", it["content"])
		}
	}
}

// TestCacheCorruptEntry: an entry that no longer makes a valid proposal is
// asked again and overwritten.
func TestCacheCorruptEntry(t *testing.T) {
	t.Parallel()
	chat := fakes.NewChat(t, always(reply(mustJSON(t, goodAnswer()), "stop")))
	tbl := openTable(t)
	rf, _ := newTestRefiner(t, chat.URL, Options{Table: tbl})
	ctx := context.Background()
	body, err := rf.requestBody(testReceipt(true), rulesProposal())
	if err != nil {
		t.Fatal(err)
	}
	key := rf.cacheKey(body)
	if err := tbl.Put(ctx, items.Item{items.AttrPK: key.PK, items.AttrSK: key.SK, items.AttrType: CacheItemType, "content": "{not json"}, items.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rf.Refine(ctx, testReceipt(true), rulesProposal()); err != nil {
		t.Fatal(err)
	}
	if _, err := rf.Refine(ctx, testReceipt(true), rulesProposal()); err != nil {
		t.Fatal(err)
	}
	if chat.Requests() != 1 || rf.CacheHits() != 1 {
		t.Errorf("server saw %d requests, %d hits; want 1 and 1", chat.Requests(), rf.CacheHits())
	}
}

// TestCacheFailureIsIgnored: a table that cannot be read or written costs
// a log line, never the answer.
func TestCacheFailureIsIgnored(t *testing.T) {
	t.Parallel()
	chat := fakes.NewChat(t, always(reply(mustJSON(t, goodAnswer()), "stop")))
	var logs syncBuffer
	rf, _ := newTestRefiner(t, chat.URL, Options{Table: failingTable{}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 2 {
		if _, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal()); err != nil {
			t.Fatal(err)
		}
	}
	if chat.Requests() != 2 || rf.CacheHits() != 0 {
		t.Errorf("server saw %d requests, %d hits; want 2 and 0", chat.Requests(), rf.CacheHits())
	}
	out := logs.String()
	if !strings.Contains(out, "llm cache read failed") || !strings.Contains(out, "llm cache write failed") || !strings.Contains(out, "table down") {
		t.Errorf("log does not report the failures:\n%s", out)
	}
}

func TestSchemaIsDeterministic(t *testing.T) {
	t.Parallel()
	rf, err := New(Options{BaseURL: "http://127.0.0.1:1/v1", Model: testModel})
	if err != nil {
		t.Fatal(err)
	}
	a, err := rf.requestBody(testReceipt(true), rulesProposal())
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // map order changes between runs of the loop
		b, _ := rf.requestBody(testReceipt(true), rulesProposal())
		if !bytes.Equal(a, b) {
			t.Fatal("request body differs between identical calls")
		}
	}
	// reasoning comes first, so the model thinks before it answers.
	if i := bytes.Index(schemaJSON, []byte(`"properties":{"reasoning"`)); i < 0 {
		t.Errorf("schema does not start with reasoning: %s", schemaJSON)
	}
	for _, l := range label.All {
		if descriptions[l] == "" {
			t.Errorf("no description for %s", l)
		}
	}
}

func TestNew(t *testing.T) {
	t.Setenv(EnvAPIKey, "")
	for _, tt := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"default base needs a key", Options{}, false},
		{"key given", Options{APIKey: "k"}, true},
		{"local server without key", Options{BaseURL: "http://127.0.0.1:11434/v1/", Model: "llama3.2"}, true},
		{"bad base", Options{BaseURL: "127.0.0.1:11434", APIKey: "k"}, false},
		{"ftp base", Options{BaseURL: "ftp://h/v1", APIKey: "k"}, false},
		{"negative timeout", Options{APIKey: "k", Timeout: -time.Second}, false},
		{"negative TTL", Options{APIKey: "k", CacheTTL: -time.Second}, false},
		{"negative max tokens", Options{APIKey: "k", MaxCompletionTokens: -1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if tt.ok && err != nil {
				t.Errorf("New: %v", err)
			}
			if !tt.ok && !errors.Is(err, tally.ErrInvalidArgument) {
				t.Errorf("New error = %v, want ErrInvalidArgument", err)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		rf, err := New(Options{APIKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if rf.endpoint != DefaultBaseURL+"/chat/completions" || rf.Model() != DefaultModel || rf.maxRetries != DefaultMaxRetries ||
			rf.timeout != DefaultTimeout || rf.ttl != DefaultCacheTTL {
			t.Errorf("defaults: %+v", rf)
		}
	})
}

func TestFromURL(t *testing.T) {
	t.Setenv(EnvAPIKey, "sk-env")
	tests := []struct {
		raw   string
		ok    bool
		check func(rf *Refiner) bool
	}{
		{"openai://gpt-4o-mini", true, func(rf *Refiner) bool {
			return rf.model == "gpt-4o-mini" && rf.endpoint == DefaultBaseURL+"/chat/completions" && rf.apiKey == "sk-env"
		}},
		{"OPENAI://gpt-4o-mini", true, nil},
		{"openai://", true, func(rf *Refiner) bool { return rf.model == DefaultModel }},
		{"openai://MODEL?base=http://127.0.0.1:11434/v1&timeout=30s&max_retries=3", true, func(rf *Refiner) bool {
			return rf.model == "MODEL" && rf.endpoint == "http://127.0.0.1:11434/v1/chat/completions" && rf.timeout == 30*time.Second && rf.maxRetries == 3
		}},
		{"openai://qwen2.5:7b?base=http%3A%2F%2F127.0.0.1%3A11434%2Fv1", true, func(rf *Refiner) bool {
			return rf.model == "qwen2.5:7b" && rf.endpoint == "http://127.0.0.1:11434/v1/chat/completions"
		}},
		{"openai://meta-llama/Llama-3.1-8B-Instruct?base=http://vllm:8000/v1", true, func(rf *Refiner) bool {
			return rf.model == "meta-llama/Llama-3.1-8B-Instruct"
		}},
		{"openai://meta-llama%2FLlama-3.1-8B-Instruct", true, func(rf *Refiner) bool { return rf.model == "meta-llama/Llama-3.1-8B-Instruct" }},
		{"openai://m?max_retries=0", true, func(rf *Refiner) bool { return rf.maxRetries == 0 }},
		{"openai://m?max_completion_tokens=2000", true, func(rf *Refiner) bool { return rf.maxCompletionTokens == 2000 }},
		{"openai://m?temperature=0", false, nil},                              // unknown key
		{"openai://m?key=sk-x", false, nil},                                   // keys stay out of URLs
		{"openai://m?api_key=sk-x", false, nil},                               // however spelt
		{"openai://m?timeout=soon", false, nil},                               // not a duration
		{"openai://m?timeout=-1s", false, nil},                                // not positive
		{"openai://m?max_retries=-1", false, nil},                             // negative
		{"openai://m?max_retries=x", false, nil},                              // not a number
		{"openai://m?max_retries=1&max_retries=2", false, nil},                // repeated
		{"openai://m?base=localhost:11434", false, nil},                       // no scheme
		{"openai://m?base=%zz", false, nil},                                   // bad escape
		{"openai://m%zz", false, nil},                                         // bad escape in model
		{"http://api.openai.com/v1", false, nil},                              // wrong scheme
		{"openai:/gpt-4o-mini", false, nil},                                   // malformed
		{"openai://m?max_completion_tokens=99999999999999999999", false, nil}, // overflow
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			rf, err := FromURL(tt.raw, Options{})
			if !tt.ok {
				if !errors.Is(err, tally.ErrInvalidArgument) {
					t.Errorf("FromURL(%q) error = %v, want ErrInvalidArgument", tt.raw, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil && !tt.check(rf) {
				t.Errorf("%+v does not hold the URL's settings", rf)
			}
		})
	}
	t.Run("options carry the rest", func(t *testing.T) {
		tbl := openTable(t)
		hc := &http.Client{}
		rf, err := FromURL("openai://m", Options{APIKey: "sk-opt", Table: tbl, HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		if rf.apiKey != "sk-opt" || rf.table != tbl {
			t.Errorf("options not kept: %+v", rf)
		}
	})
	t.Run("no key for OpenAI itself", func(t *testing.T) {
		t.Setenv(EnvAPIKey, "")
		if _, err := FromURL("openai://gpt-4o-mini", Options{}); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("error = %v, want ErrInvalidArgument", err)
		}
		if _, err := FromURL("openai://llama3.2?base=http://127.0.0.1:11434/v1", Options{}); err != nil {
			t.Errorf("a local server needs no key: %v", err)
		}
	})
}

// TestRefineRepeatedField: a label given twice (an address over two rows)
// is one field with both parts' words; an amount keeps its first value.
func TestRefineRepeatedField(t *testing.T) {
	t.Parallel()
	a := with(goodAnswer(), "fields", []any{
		field(label.AddressLine, [][2]int{{2, 1}, {2, 2}}, "123 Main"),
		field(label.AddressLine, [][2]int{{2, 3}}, "St"),
		field(label.GrandTotal, [][2]int{{9, 1}}, "6.47"),
		field(label.GrandTotal, [][2]int{{6, 2}}, "5.99"),
	})
	chat := fakes.NewChat(t, always(reply(mustJSON(t, a), "stop")))
	rf, _ := newTestRefiner(t, chat.URL, Options{})
	got, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal())
	if err != nil {
		t.Fatal(err)
	}
	addr, total := got.Fields[label.AddressLine], got.Fields[label.GrandTotal]
	if addr.Text != "123 MAIN ST" || addr.Value != "123 Main St" || len(addr.Words) != 3 {
		t.Errorf("address %+v", addr)
	}
	if total.Value != "6.47" || total.Text != "6.47 5.99" {
		t.Errorf("grand total %+v", total)
	}
}

// TestRefineRemovedField: a field the model returns empty goes, and with
// it the rules' labels that made it, even on words the model left alone.
func TestRefineRemovedField(t *testing.T) {
	t.Parallel()
	a := with(goodAnswer(), "fields", []any{field(label.Tip, nil, "")})
	a = with(a, "labels", []any{})
	chat := fakes.NewChat(t, always(reply(mustJSON(t, a), "stop")))
	rf, _ := newTestRefiner(t, chat.URL, Options{})
	got, err := rf.Refine(context.Background(), testReceipt(true), rulesProposal())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Fields[label.Tip]; ok {
		t.Errorf("TIP kept: %+v", got.Fields[label.Tip])
	}
	if len(got.Fields) != 3 {
		t.Errorf("fields %v, want the rules' other three", got.Fields)
	}
	for _, l := range got.Labels {
		if l.Label == label.Tip {
			t.Errorf("rules' TIP label kept: %+v", l)
		}
	}
	if len(got.Labels) != 3 {
		t.Errorf("labels %+v, want the rules' other three", got.Labels)
	}
}
