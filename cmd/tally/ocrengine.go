package main

import (
	"fmt"
	"sync"

	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/tesseract"
)

// ocrChoice records which OCR engine the worker runs and why, for the log
// and /healthz.
type ocrChoice struct {
	mu     sync.Mutex
	engine string // the engine's Name, empty until an OCR worker opened one
	reason string
}

func (c *ocrChoice) set(engine, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.engine, c.reason = engine, reason
}

func (c *ocrChoice) get() (engine, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.engine, c.reason
}

// ocrEngine opens the configured engine. auto takes PaddleOCR when its
// library and models load, and otherwise Tesseract, saying why; an engine
// named explicitly that cannot start is one clear error.
func (e *env) ocrEngine() (ocr.Engine, error) {
	switch e.cfg.OCREngine {
	case config.OCRPaddle:
		eng, err := openPaddle(e.cfg)
		if err != nil {
			return nil, fmt.Errorf("OCR worker: %w (install it with `make deps-ocr`, set %s, or choose %s=%s)",
				err, config.EnvPaddleDir, config.EnvOCREngine, config.OCRTesseract)
		}
		e.chose(eng, "chosen by "+config.EnvOCREngine+"="+config.OCRPaddle)
		return eng, nil
	case config.OCRAuto, "":
		eng, err := openPaddle(e.cfg)
		if err == nil {
			e.chose(eng, "auto: PaddleOCR found in "+e.cfg.PaddleDir)
			return eng, nil
		}
		t, terr := e.tesseract()
		if terr != nil {
			return nil, fmt.Errorf("%w; PaddleOCR is not available either: %v", terr, err)
		}
		e.chose(t, "auto: PaddleOCR not available: "+err.Error())
		return t, nil
	default:
		t, err := e.tesseract()
		if err != nil {
			return nil, err
		}
		e.chose(t, "chosen by "+config.EnvOCREngine+"="+config.OCRTesseract)
		return t, nil
	}
}

func (e *env) chose(eng ocr.Engine, reason string) {
	e.ocr.set(eng.Name(), reason)
	e.log.Info("OCR engine", "engine", eng.Name(), "reason", reason)
}

// tesseract opens Tesseract; a missing binary is one clear error.
func (e *env) tesseract() (ocr.Engine, error) {
	eng, err := tesseract.New(tesseract.Options{Binary: e.cfg.Tesseract, Threads: e.cfg.OCRThreads})
	if err != nil {
		return nil, fmt.Errorf("OCR worker: %w (install tesseract-ocr and tesseract-ocr-eng, e.g. `make deps-ocr`, or set %s)", err, config.EnvTesseract)
	}
	return eng, nil
}
