package entities

import (
	"fmt"

	"github.com/tallyhq/tally/items"
)

// TypeReceiptPlace is the TYPE of a ReceiptPlace item.
const TypeReceiptPlace = "RECEIPT_PLACE"

// Validation statuses of a ReceiptPlace: MATCHED when the resolver's
// confidence is at least 0.8, UNSURE below that, NO_MATCH when nothing was
// found.
const (
	PlaceMatched = "MATCHED"
	PlaceUnsure  = "UNSURE"
	PlaceNoMatch = "NO_MATCH"
)

// ReceiptPlace is the merchant a receipt was resolved to: the Google place,
// what matched, how sure, and by what (validated_by: a Places lookup by
// phone, address or text, or a similar earlier receipt).
type ReceiptPlace struct {
	ImageID          string   `json:"image_id"`
	ReceiptID        int      `json:"receipt_id"`
	PlaceID          string   `json:"place_id"`
	MerchantName     string   `json:"merchant_name"`
	MerchantTypes    []string `json:"merchant_types"`
	MerchantCategory string   `json:"merchant_category"`
	FormattedAddress string   `json:"formatted_address"`
	PhoneNumber      string   `json:"phone_number"`
	Website          string   `json:"website"`
	Latitude         float64  `json:"latitude"`
	Longitude        float64  `json:"longitude"`
	MatchedFields    []string `json:"matched_fields"`
	Confidence       float64  `json:"confidence"`
	ValidationStatus string   `json:"validation_status"`
	ValidatedBy      string   `json:"validated_by"`
	Timestamp        string   `json:"timestamp"`
}

// PlaceKey is the ReceiptPlace item's key.
func PlaceKey(imageID string, receiptID int) items.Key {
	return items.Key{PK: pk(imageID), SK: fmt.Sprintf("RECEIPT#%05d#PLACE", receiptID)}
}

// Item is p as an item.
func (p ReceiptPlace) Item() items.Item {
	k := PlaceKey(p.ImageID, p.ReceiptID)
	strs := func(xs []string) []any {
		out := make([]any, len(xs))
		for i, x := range xs {
			out[i] = x
		}
		return out
	}
	return items.Item{
		items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: TypeReceiptPlace,
		"image_id": p.ImageID, "receipt_id": p.ReceiptID, "place_id": p.PlaceID, "merchant_name": p.MerchantName,
		"merchant_types": strs(p.MerchantTypes), "merchant_category": p.MerchantCategory,
		"formatted_address": p.FormattedAddress, "phone_number": p.PhoneNumber, "website": p.Website,
		"latitude": p.Latitude, "longitude": p.Longitude, "matched_fields": strs(p.MatchedFields),
		"confidence": p.Confidence, "validation_status": p.ValidationStatus, "validated_by": p.ValidatedBy,
		"timestamp": p.Timestamp,
	}
}

// PlaceFromItem reads a ReceiptPlace item.
func PlaceFromItem(it items.Item) (ReceiptPlace, error) {
	r := reader{it: it}
	num := func(name string) float64 {
		f, _ := number(it[name])
		return f
	}
	strs := func(name string) []string {
		list, _ := it[name].([]any)
		out := make([]string, 0, len(list))
		for _, v := range list {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	p := ReceiptPlace{
		ImageID: r.str("image_id"), ReceiptID: r.int("receipt_id"), PlaceID: r.str("place_id"),
		MerchantName: r.str("merchant_name"), MerchantTypes: strs("merchant_types"), MerchantCategory: r.str("merchant_category"),
		FormattedAddress: r.str("formatted_address"), PhoneNumber: r.str("phone_number"), Website: r.str("website"),
		Latitude: num("latitude"), Longitude: num("longitude"), MatchedFields: strs("matched_fields"),
		Confidence: num("confidence"), ValidationStatus: r.str("validation_status"), ValidatedBy: r.str("validated_by"),
		Timestamp: r.str("timestamp"),
	}
	if r.err != nil {
		return p, malformed(it, r.err.Error())
	}
	return p, nil
}
