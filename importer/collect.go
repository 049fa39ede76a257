package importer

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Exts maps the file name extensions Tally takes to their content types;
// any other file is skipped with a reason rather than sent to be refused.
var Exts = map[string]string{".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
	".heic": "image/heic", ".heif": "image/heic", ".tif": "image/tiff", ".tiff": "image/tiff"}

// Reasons a file is skipped, shared by the import table and the watched
// folder's .reason.txt files.
const (
	ReasonNotImage    = "not an image kind Tally takes (JPEG, PNG, WebP, HEIC, TIFF)"
	ReasonEmpty       = "empty (0 bytes)"
	ReasonNotRegular  = "not a regular file"
	ReasonLinkOutside = "a symbolic link out of the folder"
)

// Collect lists the importable files under paths (each a directory, walked
// recursively, or one file) and the ones it skips with why. Directories
// whose names start with a dot (.imported, .failed, .git) are not entered;
// symbolic links are followed only when they stay inside their directory.
func Collect(paths ...string) (files []string, skipped []Outcome, err error) {
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("import %s: %w", p, err)
		}
		if !info.IsDir() {
			if why := SkipReason(p, info); why != "" {
				skipped = append(skipped, Outcome{Path: p, Status: Skipped, Reason: why})
			} else {
				add(p)
			}
			continue
		}
		root, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, nil, fmt.Errorf("import %s: %w", p, err)
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				skipped = append(skipped, Outcome{Path: path, Status: Skipped, Reason: "unreadable: " + err.Error()})
				return nil
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if LinkOutside(root, path) {
				skipped = append(skipped, Outcome{Path: path, Status: Skipped, Reason: ReasonLinkOutside})
				return nil
			}
			info, err := os.Stat(path)
			if err != nil {
				skipped = append(skipped, Outcome{Path: path, Status: Skipped, Reason: "unreadable: " + err.Error()})
				return nil
			}
			if why := SkipReason(path, info); why != "" {
				skipped = append(skipped, Outcome{Path: path, Status: Skipped, Reason: why})
				return nil
			}
			add(path)
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("import %s: %w", p, err)
		}
	}
	return files, skipped, nil
}

// LinkOutside reports whether path is a symbolic link that does not resolve
// to a file inside root (root itself with its links resolved): such a link
// would import, or move, files the folder's owner never put there. A
// dangling link counts as outside.
func LinkOutside(root, path string) bool {
	info, err := os.Lstat(path)
	if err != nil || info.Mode()&fs.ModeSymlink == 0 {
		return false
	}
	real, err := filepath.EvalSymlinks(path)
	return err != nil || !strings.HasPrefix(real, root+string(filepath.Separator))
}

// SkipReason is why a file (info from os.Stat) is not worth sending, or "".
func SkipReason(path string, info fs.FileInfo) string {
	switch {
	case !info.Mode().IsRegular():
		return ReasonNotRegular
	case Exts[strings.ToLower(filepath.Ext(path))] == "":
		return ReasonNotImage
	case info.Size() == 0:
		return ReasonEmpty
	}
	return ""
}
