package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/rules"
)

func TestE2EDump(t *testing.T) {
	if os.Getenv("E2E") == "" { t.Skip() }
	rs, _ := sroie.LoadAll(filepath.Join(fixtures.Dir(t), "sroie"))
	var tally sroie.FieldTally
	var b strings.Builder
	for _, r := range rs {
		raw, err := os.ReadFile("/tmp/e2e-exports/" + r.Name + ".json")
		if err != nil { t.Fatal(err) }
		var e entities.Export
		json.Unmarshal(raw, &e)
		set := entities.Set{Receipts: e.Receipts, ReceiptLines: e.ReceiptLines, ReceiptWords: e.ReceiptWords, ReceiptRows: e.ReceiptRows}
		if len(set.Receipts) == 0 { tally.Add(r.Name, sroie.ScoreFields(r.Key, sroie.Fields{})); continue }
		in := label.FromSet(set, 1)
		p, _ := rules.New().Label(context.Background(), in)
		label.Validate(in, &p)
		s := label.Summarize(in, p, time.Unix(0, 0)).Summary
		sc := sroie.ScoreFields(r.Key, fields(s))
		tally.Add(r.Name, sc)
		f := os.Getenv("E2E")
		var v sroie.FieldVerdict
		switch f { case "date": v = sc.Date; case "address": v = sc.Address; case "company": v = sc.Company; case "total": v = sc.Total }
		if v.Normalized.Miss() {
			fmt.Fprintf(&b, "== %s want %q %q %q %q\n   got %q | %q | %q/%q | %q\n", r.Name, r.Key.Company, r.Key.Address, r.Key.Date, r.Key.Total,
				s.Fields[label.MerchantName].Text, s.Fields[label.AddressLine].Text, s.Fields[label.Date].Text, s.Fields[label.Date].Value, s.Fields[label.GrandTotal].Value)
			if os.Getenv("ROWS") != "" {
				for _, row := range in.Rows[:min(len(in.Rows), 40)] { fmt.Fprintf(&b, "     | %s\n", row.Text) }
			}
		}
	}
	s, n := tally.F1()
	t.Logf("strict %.1f norm %.1f\n%s\n%s", 100*s, 100*n, tally.Table(), b.String())
}
