package web

import (
	"net/http"
	"sort"

	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/money"
)

// dashboardCap bounds the summaries the dashboard reads (newest first).
const dashboardCap = 100_000

// bar is one bar of a server-drawn SVG chart.
type bar struct {
	Label, Value string
	X, Y, W, H   float64
}

// chart is a bar chart drawn as SVG by the server (no charting script).
type chart struct {
	Title  string
	Bars   []bar
	Width  float64
	Height float64
}

// barChart lays out amounts (in their order) as bars of one chart.
func barChart(title string, labels []string, amounts []money.Amount) chart {
	const w, h, gap, top = 640.0, 220.0, 6.0, 16.0
	c := chart{Title: title, Width: w, Height: h + 40}
	if len(labels) == 0 {
		return c
	}
	maxCents := int64(1)
	cents := make([]int64, len(amounts))
	for i, a := range amounts {
		cents[i] = a.Units(2)
		maxCents = max(maxCents, cents[i])
	}
	bw := min((w-gap*float64(len(labels)+1))/float64(len(labels)), 60)
	for i, l := range labels {
		bh := (h - top) * float64(max(cents[i], 0)) / float64(maxCents)
		c.Bars = append(c.Bars, bar{Label: l, Value: amounts[i].Fixed(2), X: gap + float64(i)*(bw+gap), Y: h - bh, W: bw, H: bh})
	}
	return c
}

// dashboard shows spend per month and per merchant (in the most common
// currency), counts per status, and the pipeline's queues.
func (a *App) dashboard(w http.ResponseWriter, r *http.Request) {
	type agg struct {
		total money.Amount
		n     int
	}
	byCurrency := map[string]int{}
	months := map[string]map[string]*agg{}    // currency → month
	merchants := map[string]map[string]*agg{} // currency → merchant
	statuses := map[string]int{}
	read, accepted := 0, 0
	token := ""
	for read < dashboardCap {
		p, err := label.List(r.Context(), a.cfg.Items, label.Filter{Owner: auth.Owner(r.Context())}, label.MaxListLimit, token)
		if err != nil {
			a.fail(w, err)
			return
		}
		for _, s := range p.Summaries {
			read++
			statuses[s.Status]++
			if s.Accepted {
				accepted++
			}
			t, err := money.Parse(s.GrandTotal)
			if err != nil || s.GrandTotal == "" {
				continue
			}
			cur := s.Currency
			byCurrency[cur]++
			add := func(m map[string]map[string]*agg, k string) {
				if m[cur] == nil {
					m[cur] = map[string]*agg{}
				}
				if m[cur][k] == nil {
					m[cur][k] = &agg{}
				}
				m[cur][k].total = m[cur][k].total.Add(t)
				m[cur][k].n++
			}
			if len(s.Date) >= 7 {
				add(months, s.Date[:7])
			}
			name := s.MerchantName
			if name == "" {
				name = "(unknown)"
			}
			add(merchants, name)
		}
		if p.NextToken == "" {
			break
		}
		token = p.NextToken
	}
	currency := ""
	for c, n := range byCurrency {
		if n > byCurrency[currency] || (n == byCurrency[currency] && c < currency) {
			currency = c
		}
	}
	var ml []string
	for m := range months[currency] {
		ml = append(ml, m)
	}
	sort.Strings(ml)
	if len(ml) > 12 {
		ml = ml[len(ml)-12:]
	}
	var ma []money.Amount
	for _, m := range ml {
		ma = append(ma, months[currency][m].total)
	}
	var mer []string
	for m := range merchants[currency] {
		mer = append(mer, m)
	}
	sort.Slice(mer, func(i, j int) bool {
		a, b := merchants[currency][mer[i]].total, merchants[currency][mer[j]].total
		if c := a.Cmp(b); c != 0 {
			return c > 0
		}
		return mer[i] < mer[j]
	})
	if len(mer) > 10 {
		mer = mer[:10]
	}
	var mera []money.Amount
	for _, m := range mer {
		mera = append(mera, merchants[currency][m].total)
	}
	type queueRow struct {
		Name                      string
		Visible, InFlight, Failed int
		Err                       string
	}
	var qs []queueRow
	for _, q := range a.cfg.Queues {
		row := queueRow{Name: q.Name()}
		if st, err := q.Stats(r.Context()); err != nil {
			row.Err = err.Error()
		} else {
			row.Visible, row.InFlight = st.Visible, st.InFlight
		}
		qs = append(qs, row)
	}
	a.render(w, http.StatusOK, "dashboard", map[string]any{
		"Common": a.common(r, "Dashboard", "dashboard"), "Currency": currency,
		"Months": barChart("Spend per month", ml, ma), "Merchants": barChart("Spend per merchant", mer, mera),
		"Valid": statuses[entities.SummaryValid], "Review": statuses[entities.SummaryNeedsReview], "Accepted": accepted,
		"Read": read, "Capped": read >= dashboardCap, "Queues": qs,
	})
}
