//go:build nopaddle

package main

import (
	"fmt"

	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/ocr"
)

// openPaddle refuses: this binary was built without PaddleOCR (the static
// Lambda build, since loading ONNX Runtime needs a dynamically linked
// binary).
func openPaddle(config.Config) (ocr.Engine, error) {
	return nil, fmt.Errorf("%w: this tally was built with -tags nopaddle (as the static Lambda binaries are) and has no PaddleOCR engine", ocr.ErrEngine)
}
