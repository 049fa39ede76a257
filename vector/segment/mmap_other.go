//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package segment

import (
	"io"
	"os"
)

// mapFile reads f into memory where mmap is not available; the segment then
// behaves the same, it just costs a copy.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
