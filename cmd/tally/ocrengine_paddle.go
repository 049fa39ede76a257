//go:build !nopaddle

package main

import (
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/paddle"
)

// openPaddle loads ONNX Runtime and the PaddleOCR models from the
// configured directory.
func openPaddle(cfg config.Config) (ocr.Engine, error) {
	return paddle.New(paddle.Options{Dir: cfg.PaddleDir, Threads: cfg.OCRThreads})
}
