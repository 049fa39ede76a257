//go:build race

package ann

import (
	"runtime"
	"unsafe"
)

// raceReadFloats reports v to the race detector as read, as one range: the
// callers of dot, which is not instrumented, use it for the matrix and the
// query they read.
func raceReadFloats(v []float32) {
	if len(v) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(unsafe.SliceData(v)), len(v)*4)
	}
}
