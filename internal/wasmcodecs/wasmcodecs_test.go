package wasmcodecs_test

import (
	"bytes"
	"image"
	"sync"
	"testing"

	"github.com/gen2brain/avif"
	"github.com/gen2brain/webp"

	"github.com/tallyhq/tally/internal/wasmcodecs"
)

// TestConcurrentFirstUse: the codecs' first uses in parallel, each after
// Start, as renditions and uploads do them — under -race this fails if
// two wazero runtimes can start at once.
func TestConcurrentFirstUse(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wasmcodecs.Start()
			var b bytes.Buffer
			var err error
			if i%2 == 0 {
				err = webp.Encode(&b, img, webp.Options{Quality: 50})
			} else {
				err = avif.Encode(&b, img, avif.Options{Quality: 50, Speed: avif.DefaultSpeed})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
