// Package layout is the geometry of the OCR stage: it tells screenshots,
// photos and scans apart, groups an image's OCR lines into receipts, finds
// each receipt's corners and straightens each receipt into its own crop, so
// that the OCR worker can read every receipt on its own.
//
// Inputs and outputs use the ocr package's normalized coordinates (origin
// bottom-left, y up); inside, geometry runs in pixel space, where lengths and
// angles are true.
package layout
