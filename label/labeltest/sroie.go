package labeltest

import (
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/sroie"
	"github.com/tallyhq/tally/label"
)

// SROIEReceipt is the label input of a SROIE receipt's ground-truth
// transcript, built through the same entities.Build the pipeline uses, so
// that labellers are measured on what the process stage would hand them.
func SROIEReceipt(tb testing.TB, r sroie.Receipt) label.Receipt {
	tb.Helper()
	res, err := r.Result()
	if err != nil {
		tb.Fatal(err)
	}
	set, err := entities.Build(entities.Source{ImageID: "sroie-" + r.Name, Result: res, Added: time.Unix(0, 0)})
	if err != nil {
		tb.Fatal(err)
	}
	return label.FromSet(set, 1)
}

// SROIEFields is what SROIE's key-field scoring reads from a summary:
// MERCHANT_NAME and ADDRESS_LINE as printed, DATE as printed and as ISO,
// GRAND_TOTAL's value.
func SROIEFields(s entities.ReceiptSummary) sroie.Fields {
	return sroie.Fields{Company: s.Fields[label.MerchantName].Text, Address: s.Fields[label.AddressLine].Text,
		DateText: s.Fields[label.Date].Text, DateISO: s.Fields[label.Date].Value, Total: s.Fields[label.GrandTotal].Value}
}
