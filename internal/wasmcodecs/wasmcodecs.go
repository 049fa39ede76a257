// Package wasmcodecs starts the WebAssembly image codecs (libwebp,
// libavif and libheif through wazero) one after the other, once per
// process. wazero's runtime constructor reads and writes a package
// variable unguarded (internal/version), so two codecs starting at the
// same time are a data race; every package that decodes or encodes with
// them calls Start first.
package wasmcodecs

import (
	"bytes"
	"sync"

	"github.com/gen2brain/avif"
	"github.com/gen2brain/heic"
	"github.com/gen2brain/webp"
)

var once sync.Once

// Start starts every codec (once; later calls wait for the first). A codec
// that cannot start is left for its first use to report.
func Start() { once.Do(start) }

func start() {
	for _, f := range []func(){webp.Init, avif.InitEncoder, avif.InitDecoder, func() {
		// heic has no Init: a first decode (of nothing) starts its runtime.
		_, _ = heic.DecodeConfig(bytes.NewReader(nil))
	}} {
		func() {
			defer func() { _ = recover() }()
			f()
		}()
	}
}
