package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
)

// BenchmarkListPage stores 10,000 (and 100,000) receipt summaries (a third needing
// review) and measures the receipts list: server time per page at p50 and
// p90 (ms; unfiltered, and filtered to VALID, which reads past the others),
// and its weight — the HTML of 50 receipts plus the CSS and
// JavaScript it loads, thumbnails excluded (KB). Goals: ≤ 100 KB, p50 ≤ 20 ms.
func BenchmarkListPage(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("receipts=%d", n), func(b *testing.B) { benchListPage(b, n) })
	}
}

func benchListPage(b *testing.B, n int) {
	bd := setupB(b)
	puts := make([]items.Item, 0, n)
	for i := range n {
		s := entities.ReceiptSummary{ImageID: fmt.Sprintf("img-%05d", i), ReceiptID: 1, MerchantName: fmt.Sprintf("MERCHANT %d SDN BHD", i%300),
			Date:       time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%365).Format("2006-01-02"),
			GrandTotal: fmt.Sprintf("%d.%02d", 1+i%200, i%100), Currency: "MYR", Status: entities.SummaryValid, ReviewReasons: []string{}}
		if i%3 == 0 {
			s.Status, s.ReviewReasons = entities.SummaryNeedsReview, []string{"check totals_add_up failed"}
		}
		it, err := s.Item()
		if err != nil {
			b.Fatal(err)
		}
		puts = append(puts, it)
	}
	if err := items.PutAll(context.Background(), bd.items, puts); err != nil {
		b.Fatal(err)
	}
	fetch := func(path string) []byte {
		resp, err := http.Get(bd.server.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return body
	}
	page := fetch("/")
	weight := len(page)
	for _, m := range regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`).FindAllSubmatch(page, -1) {
		weight += len(fetch(string(m[1])))
	}
	var all, valid []time.Duration
	for b.Loop() {
		start := time.Now()
		fetch("/")
		all = append(all, time.Since(start))
		start = time.Now()
		fetch("/?status=VALID")
		valid = append(valid, time.Since(start))
	}
	for _, m := range []struct {
		name  string
		times []time.Duration
	}{{"", all}, {"-valid", valid}} {
		sort.Slice(m.times, func(i, j int) bool { return m.times[i] < m.times[j] })
		b.ReportMetric(float64(m.times[len(m.times)/2].Microseconds())/1000, "ms-p50"+m.name)
		b.ReportMetric(float64(m.times[len(m.times)*9/10].Microseconds())/1000, "ms-p90"+m.name)
	}
	b.ReportMetric(float64(weight)/1024, "KB/page")
	b.ReportMetric(0, "ns/op")
}
