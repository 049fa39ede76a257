package rules_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/labeltest"
	"github.com/tallyhq/tally/label/rules"
)

// printed is the suite's receipt builder.
func printed(tb testing.TB, rows ...string) label.Receipt { return labeltest.Printed(tb, rows...) }

// understand runs the rules and the summary as the process stage does.
func understand(tb testing.TB, r label.Receipt) entities.Understanding {
	tb.Helper()
	p, err := rules.New().Label(context.Background(), r)
	if err != nil {
		tb.Fatal(err)
	}
	if err := label.Validate(r, &p); err != nil {
		tb.Fatalf("invalid proposal: %v", err)
	}
	return label.Summarize(r, p, time.Unix(0, 0))
}

func TestUSReceipt(t *testing.T) {
	t.Parallel()
	u := understand(t, printed(t,
		"CORNER GROCERY INC.",
		"614 Gravier Street",
		"New Orleans, LA 70130",
		"Tel (504) 555-0199",
		"03/04/2024 5:42 PM",
		"2 X 1.50 BANANAS 3.00",
		"MILK 4.25",
		"COUPON -0.50",
		"SUBTOTAL $6.75",
		"SALES TAX 0.54",
		"TOTAL $7.29",
		"VISA ************4242 7.29",
	))
	s := u.Summary
	want := map[string]string{label.MerchantName: "CORNER GROCERY INC.", label.Date: "2024-03-04", label.Time: "17:42",
		label.Subtotal: "6.75", label.Tax: "0.54", label.GrandTotal: "7.29", label.PaymentMethod: "VISA", label.PhoneNumber: "+15045550199"}
	for k, v := range want {
		got := s.Fields[k].Value
		if k == label.MerchantName {
			got = s.Fields[k].Text
		}
		if got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if s.Country != "US" || s.Currency != "USD" || s.CardLast4 != "4242" {
		t.Errorf("country %q currency %q last4 %q", s.Country, s.Currency, s.CardLast4)
	}
	if addr := s.Fields[label.AddressLine].Text; !strings.Contains(addr, "Gravier") || !strings.Contains(addr, "70130") {
		t.Errorf("address = %q", addr)
	}
	if len(u.LineItems) != 3 || u.LineItems[0].Quantity != "2" || u.LineItems[0].UnitPrice != "1.50" || !u.LineItems[2].IsDiscount {
		t.Errorf("line items = %+v", u.LineItems)
	}
	if s.Status != entities.SummaryValid {
		t.Errorf("status %s: %v", s.Status, s.ReviewReasons)
	}
	for _, c := range s.Checks {
		if c.Status != entities.CheckPass {
			t.Errorf("check %s: %s %s", c.Name, c.Status, c.Detail)
		}
	}
}

func TestMalaysianReceipt(t *testing.T) {
	t.Parallel()
	u := understand(t, printed(t,
		"KEDAI RUNCIT MAJU SDN BHD",
		"(123456-X)",
		"NO 12, JALAN BESAR,",
		"81100 JOHOR BAHRU, JOHOR.",
		"TEL : 07-355 2616",
		"GST NO: 000800589824",
		"DATE : 09/01/2019 8:01:11 PM",
		"SUGAR 1 2.90 2.90 SR",
		"RICE 5KG 1 17.95 17.95 SR",
		"TOTAL SALES (EXCLUDING GST) : 20.85",
		"TOTAL GST : 0.00",
		"ROUNDING : -0.05",
		"TOTAL : RM 20.80",
		"CASH : 50.00",
		"CHANGE : 29.20",
	))
	s := u.Summary
	if s.Country != "MY" || s.Currency != "MYR" {
		t.Errorf("country %q currency %q", s.Country, s.Currency)
	}
	if s.Date != "2019-01-09" || s.GrandTotal != "20.80" || s.Subtotal != "20.85" || s.Rounding != "-0.05" || s.MerchantName != "KEDAI RUNCIT MAJU SDN BHD" {
		t.Errorf("summary = %+v", s)
	}
	if s.Status != entities.SummaryValid {
		t.Errorf("status %s: %v", s.Status, s.ReviewReasons)
	}
}

// TestBadInput: each odd receipt gets a summary that needs review and says
// why, never a crash or a guess stated as fact.
func TestBadInput(t *testing.T) {
	t.Parallel()
	huge := []string{"BIG STORE SDN BHD", "DATE: 01/02/2019"}
	for i := range 2000 {
		huge = append(huge, fmt.Sprintf("ITEM %d 1.00", i))
	}
	huge = append(huge, "TOTAL 2000.00")
	cases := []struct {
		name   string
		rows   []string
		reason string // a substring of one review reason
	}{
		{"no text", nil, "no GRAND_TOTAL found"},
		{"no amounts", []string{"CORNER SHOP", "THANK YOU", "COME AGAIN"}, "no GRAND_TOTAL found"},
		{"two totals", []string{"CORNER SHOP LLC", "03/04/2024", "MILK 4.25", "TOTAL 4.25", "TOTAL 5.25"}, "different totals"},
		{"decimal comma", []string{"CORNER SHOP LLC", "TAX INVOICE", "SALES TAX 0.00", "03/04/2024", "SUBTOTAL $1.234,56", "TOTAL $1.234,56"}, "decimal comma"},
		{"refund", []string{"CORNER SHOP LLC", "REFUND", "03/04/2024", "MILK -4.25", "TOTAL -4.25"}, "refund"},
		{"impossible date", []string{"CORNER SHOP LLC", "31/02/2019", "MILK 4.25", "TOTAL 4.25"}, "not a real date"},
		{"huge", huge, "2003 rows"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var r label.Receipt
			if c.rows != nil {
				r = printed(t, c.rows...)
			} else {
				r = label.Receipt{ImageID: "img-1", ReceiptID: 1}
			}
			s := understand(t, r).Summary
			if s.Status != entities.SummaryNeedsReview {
				t.Fatalf("status %s, want NEEDS_REVIEW", s.Status)
			}
			found := false
			for _, why := range s.ReviewReasons {
				found = found || strings.Contains(why, c.reason)
			}
			if !found {
				t.Errorf("reasons %q lack %q", s.ReviewReasons, c.reason)
			}
			for _, k := range label.RequiredFields {
				if _, ok := s.Fields[k]; !ok {
					t.Errorf("fields lack %s", k)
				}
			}
		})
	}
}

// BenchmarkRules is the rules' time per receipt on a typical receipt.
func BenchmarkRules(b *testing.B) {
	r := printed(b, "CORNER GROCERY INC.", "614 Gravier Street", "New Orleans, LA 70130", "Tel (504) 555-0199",
		"03/04/2024 5:42 PM", "2 X 1.50 BANANAS 3.00", "MILK 4.25", "SUBTOTAL $7.25", "SALES TAX 0.58", "TOTAL $7.83", "VISA 7.83")
	l := rules.New()
	for b.Loop() {
		if _, err := l.Label(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestItemPieces: "1 PC" is the quantity, and the item's name comes from
// its own row above, as SROIE's hardware receipts print them.
func TestItemPieces(t *testing.T) {
	t.Parallel()
	u := understand(t, printed(t, "KEDAI MAJU SDN BHD", "DATE: 25/12/2018", "9556939040118 KF MODELLING CLAY",
		"1PC 9.000 0.00 9.00", "TOTAL: 9.00"))
	if len(u.LineItems) != 1 {
		t.Fatalf("items: %+v", u.LineItems)
	}
	li := u.LineItems[0]
	if li.Quantity != "1" || li.UnitPrice != "9.00" || li.Price != "9.00" || !strings.Contains(li.Name, "MODELLING CLAY") {
		t.Errorf("item: %+v", li)
	}
}
