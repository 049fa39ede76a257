package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ReasonSuffix ends the note written beside each moved file.
const ReasonSuffix = ".reason.txt"

// Move moves src to dst, making dst's folder, and writes note to
// DST.reason.txt beside it. It never replaces a file: when dst (or its
// note) exists, "-1", "-2", … goes before the extension. It links then
// unlinks, so even a racing mover cannot overwrite; on a file system
// without hard links it checks, then renames. It returns where the file
// went.
func Move(src, dst, note string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("move %s: %w", src, err)
	}
	ext := filepath.Ext(dst)
	stem := strings.TrimSuffix(dst, ext)
	for i := 0; i < 10000; i++ {
		cand := dst
		if i > 0 {
			cand = fmt.Sprintf("%s-%d%s", stem, i, ext)
		}
		if exists(cand + ReasonSuffix) {
			continue
		}
		err := os.Link(src, cand)
		switch {
		case errors.Is(err, fs.ErrExist):
			continue
		case err == nil:
			if err := os.Remove(src); err != nil {
				os.Remove(cand)
				return "", fmt.Errorf("move %s: %w", src, err)
			}
		default:
			// No hard links here (some SMB and FUSE mounts).
			if exists(cand) {
				continue
			}
			if err := os.Rename(src, cand); err != nil {
				return "", fmt.Errorf("move %s: %w", src, err)
			}
		}
		if err := os.WriteFile(cand+ReasonSuffix, []byte(note), 0o644); err != nil {
			return cand, fmt.Errorf("write the reason of %s: %w", cand, err)
		}
		return cand, nil
	}
	return "", fmt.Errorf("move %s: no free name like %s", src, dst)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
