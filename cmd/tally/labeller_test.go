package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/fakes"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
)

// llmReceipt is a two-row receipt: a name and a total.
func llmReceipt() label.Receipt {
	r := label.Receipt{ImageID: "img-llm", ReceiptID: 1, Width: 400, Height: 400}
	rows := [][]string{{"CORNER", "SHOP", "LLC"}, {"TOTAL", "4.25"}}
	for li, ws := range rows {
		y := 0.9 - 0.3*float64(li)
		var lineWords []string
		for wi, tx := range ws {
			x := 0.05 + 0.3*float64(wi)
			q := ocr.Quad{TopLeft: ocr.Point{X: x, Y: y}, TopRight: ocr.Point{X: x + 0.25, Y: y},
				BottomRight: ocr.Point{X: x + 0.25, Y: y - 0.1}, BottomLeft: ocr.Point{X: x, Y: y - 0.1}}
			r.Words = append(r.Words, entities.ReceiptWord{ImageID: r.ImageID, ReceiptID: 1, LineID: li + 1, WordID: wi + 1, Text: tx, Geometry: ocr.NewGeometry(q, 1)})
			lineWords = append(lineWords, tx)
		}
		q := ocr.Quad{TopLeft: ocr.Point{X: 0.05, Y: y}, TopRight: ocr.Point{X: 0.95, Y: y},
			BottomRight: ocr.Point{X: 0.95, Y: y - 0.1}, BottomLeft: ocr.Point{X: 0.05, Y: y - 0.1}}
		r.Lines = append(r.Lines, entities.ReceiptLine{ImageID: r.ImageID, ReceiptID: 1, LineID: li + 1, Text: strings.Join(lineWords, " "), Geometry: ocr.NewGeometry(q, 1)})
	}
	r.Rows = entities.GroupRows(r.Lines, r.Width, r.Height)
	return r
}

// TestLLMURL: TALLY_LLM_URL attaches the LLM refiner to the label
// pipeline; a good answer is used, a malformed or truncated one, or a
// server that is down, leaves the rules' proposal and logs why.
func TestLLMURL(t *testing.T) {
	t.Parallel()
	if _, err := newLabelPipeline(config.Config{LLMURL: "gpt://nope"}, nil, nil); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("bad TALLY_LLM_URL: %v", err)
	}
	if pl, err := newLabelPipeline(config.Config{}, nil, nil); err != nil || pl.Refiner != nil {
		t.Errorf("no TALLY_LLM_URL: refiner %v, %v", pl.Refiner, err)
	}
	good, _ := json.Marshal(map[string]any{
		"reasoning": "the name is on the first row",
		"fields": []any{
			map[string]any{"label": label.MerchantName, "words": []any{[]int{1, 1}, []int{1, 2}}, "value": "Corner Shop"},
			map[string]any{"label": label.GrandTotal, "words": []any{[]int{2, 2}}, "value": "4.25"},
		},
		"line_items": []any{},
		"labels":     []any{map[string]any{"line_id": 2, "word_id": 2, "label": label.GrandTotal}},
		"currency":   "USD",
	})
	cases := []struct {
		name    string
		reply   fakes.ChatReply
		down    bool
		refined bool
	}{
		{name: "good", reply: fakes.ChatReply{Body: fakes.ChatCompletion("m", string(good), "stop")}, refined: true},
		{name: "malformed", reply: fakes.ChatReply{Body: fakes.ChatCompletion("m", "Sure! The merchant is", "stop")}},
		{name: "truncated", reply: fakes.ChatReply{Body: fakes.ChatCompletion("m", string(good[:len(good)/2]), "length")}},
		{name: "unknown word", reply: fakes.ChatReply{Body: fakes.ChatCompletion("m", strings.ReplaceAll(string(good), "[2,2]", "[9,9]"), "stop")}},
		{name: "down", down: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			chat := fakes.NewChat(t, func(fakes.ChatRequest) fakes.ChatReply { return c.reply })
			base := chat.URL
			if c.down {
				base = "http://127.0.0.1:1/v1"
			}
			var logs syncBuf
			log := slog.New(slog.NewTextHandler(&logs, nil))
			pl, err := newLabelPipeline(config.Config{LLMURL: "openai://m?max_retries=0&base=" + base}, nil, log)
			if err != nil {
				t.Fatal(err)
			}
			p, err := pl.Propose(context.Background(), llmReceipt())
			if err != nil {
				t.Fatal(err)
			}
			if c.refined {
				if p.Source != "rules+llm" || p.Fields[label.MerchantName].Text != "CORNER SHOP" || p.Fields[label.MerchantName].Source != label.SourceLLM {
					t.Errorf("refined proposal: source %q merchant %+v", p.Source, p.Fields[label.MerchantName])
				}
				return
			}
			if p.Source != label.SourceRules || p.Fields[label.GrandTotal].Value != "4.25" {
				t.Errorf("the rules' proposal was not kept: source %q total %+v", p.Source, p.Fields[label.GrandTotal])
			}
			if !strings.Contains(logs.String(), "keeping the rules") {
				t.Errorf("no log of why: %q", logs.String())
			}
		})
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var _ io.Writer = (*syncBuf)(nil)
