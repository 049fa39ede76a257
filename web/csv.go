package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
)

// CSVOptions shape an export.
type CSVOptions struct {
	// PerItem writes one row per line item (a receipt without items still
	// gets one row) instead of one per receipt.
	PerItem bool
	// BOM starts the file with a UTF-8 byte-order mark, which some
	// spreadsheet programs need to read UTF-8.
	BOM bool
}

var receiptColumns = []string{"image_id", "receipt_id", "merchant", "date", "currency", "subtotal", "tax", "tip",
	"grand_total", "payment_method", "card_last4", "status", "review_reasons"}

var itemColumns = []string{"item_index", "item_name", "quantity", "unit_price", "price", "is_discount"}

// WriteCSV writes the summaries the filter selects, newest first, as RFC
// 4180 CSV: ISO dates, amounts as decimals with '.', text that a
// spreadsheet would take for a formula prefixed with a quote.
func WriteCSV(ctx context.Context, w io.Writer, t items.Table, f label.Filter, o CSVOptions) error {
	if o.BOM {
		if _, err := io.WriteString(w, "\ufeff"); err != nil {
			return err
		}
	}
	cw := csv.NewWriter(w)
	head := receiptColumns
	if o.PerItem {
		head = append(append([]string{}, receiptColumns...), itemColumns...)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	token := ""
	for {
		p, err := label.List(ctx, t, f, label.MaxListLimit, token)
		if err != nil {
			return fmt.Errorf("export CSV: %w", err)
		}
		for _, s := range p.Summaries {
			row := []string{s.ImageID, strconv.Itoa(s.ReceiptID), cell(s.MerchantName), s.Date, s.Currency, s.Subtotal, s.Tax, s.Tip,
				s.GrandTotal, cell(s.PaymentMethod), s.CardLast4, s.Status, cell(strings.Join(s.ReviewReasons, "; "))}
			if !o.PerItem {
				if err := cw.Write(row); err != nil {
					return err
				}
				continue
			}
			us, err := entities.LoadUnderstanding(ctx, t, s.ImageID, s.ReceiptID)
			if err != nil {
				return fmt.Errorf("export CSV: %w", err)
			}
			var lis []entities.ReceiptLineItem
			if len(us) > 0 {
				lis = us[0].LineItems
			}
			if len(lis) == 0 {
				if err := cw.Write(append(row, "", "", "", "", "", "")); err != nil {
					return err
				}
			}
			for _, li := range lis {
				if err := cw.Write(append(append([]string{}, row...), strconv.Itoa(li.ItemIndex), cell(li.Name), li.Quantity,
					li.UnitPrice, li.Price, strconv.FormatBool(li.IsDiscount))); err != nil {
					return err
				}
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if p.NextToken == "" {
			return nil
		}
		token = p.NextToken
	}
}

// cell guards text against formula injection (=, +, -, @ at the start).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (a *App) exportCSV(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := filterOf(r.Context(), q)
	// Check the filter before the first byte goes out.
	if _, err := label.List(r.Context(), a.cfg.Items, f, 1, ""); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="receipts.csv"`)
	o := CSVOptions{PerItem: q.Get("items") == "1", BOM: q.Get("bom") == "1"}
	if err := WriteCSV(r.Context(), w, a.cfg.Items, f, o); err != nil {
		a.cfg.Log.Error("export CSV", "err", err)
	}
}

// exportJSON writes the filtered summaries (with their line items) as one
// JSON array, newest first.
func (a *App) exportJSON(w http.ResponseWriter, r *http.Request) {
	f := filterOf(r.Context(), r.URL.Query())
	if _, err := label.List(r.Context(), a.cfg.Items, f, 1, ""); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="receipts.json"`)
	if err := WriteJSON(r.Context(), w, a.cfg.Items, f); err != nil {
		a.cfg.Log.Error("export JSON", "err", err)
	}
}

// exported is one receipt of a JSON export.
type exported struct {
	entities.ReceiptSummary
	LineItems []entities.ReceiptLineItem `json:"line_items"`
}

// WriteJSON writes the summaries the filter selects, each with its line
// items, as a JSON array streamed page by page.
func WriteJSON(ctx context.Context, w io.Writer, t items.Table, f label.Filter) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	first := true
	token := ""
	for {
		p, err := label.List(ctx, t, f, label.MaxListLimit, token)
		if err != nil {
			return fmt.Errorf("export JSON: %w", err)
		}
		for _, s := range p.Summaries {
			us, err := entities.LoadUnderstanding(ctx, t, s.ImageID, s.ReceiptID)
			if err != nil {
				return fmt.Errorf("export JSON: %w", err)
			}
			e := exported{ReceiptSummary: s, LineItems: []entities.ReceiptLineItem{}}
			if len(us) > 0 && us[0].LineItems != nil {
				e.LineItems = us[0].LineItems
			}
			if !first {
				if _, err := io.WriteString(w, ","); err != nil {
					return err
				}
			}
			first = false
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		if p.NextToken == "" {
			break
		}
		token = p.NextToken
	}
	_, err := io.WriteString(w, "]\n")
	return err
}
