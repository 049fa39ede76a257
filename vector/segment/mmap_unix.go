//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package segment

import (
	"os"
	"syscall"
)

// mapFile maps f read-only and shared: pages come from the page cache on
// demand and are shared by every process reading the same segment.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
