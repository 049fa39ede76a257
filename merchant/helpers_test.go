package merchant_test

import (
	"strings"

	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/extract"
)

func splitWords(s string) []string { return strings.Fields(s) }

func extractAnnotate(lines []ocr.Line) { extract.Annotate(lines) }
