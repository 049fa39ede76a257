package ocr

import (
	"context"
	"errors"
	"image"
)

// Engine recognizes text in an image. Tesseract is the built-in engine; an
// external worker (Apple Vision, for example) can instead submit a Result in
// the same JSON.
type Engine interface {
	// Recognize returns the lines of img, top to bottom, with their words and
	// letters, in img's normalized coordinates (origin bottom-left, y up). An
	// image without text gives no lines and no error.
	Recognize(ctx context.Context, img image.Image) ([]Line, error)
	// Name identifies the engine and its version, for results and logs.
	Name() string
}

// ErrEngine marks a failure of the engine itself (missing binary, crash),
// as opposed to an image it could not read any text from.
var ErrEngine = errors.New("ocr: engine failed")
