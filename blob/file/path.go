package file

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// The key → path mapping. A key is split at "/" into segments; every
// segment but the last names a directory, the last names the object file:
//
//	key "收据/Été/a.json" → "%e6%94%b6%e6%8d%ae.d/%c3%89t%c3%a9.d/a.json.o"
//
// Each segment is escaped so that the name is portable and unambiguous:
// bytes outside [a-z0-9._-] (including upper case, so that case-insensitive
// file systems cannot merge "A" and "a", and non-ASCII, so that
// normalising ones cannot merge NFC and NFD spellings) become "%" and two
// lower-case hex digits, as does a leading ".". Then a suffix names the kind:
// ".o" for an object, ".d" for a directory. So "a" (a.o) and "a/b"
// (a.d/b.o) never collide, and no escaped segment can be "." or "..".
//
// An escaped segment longer than maxEscaped bytes is replaced by "=" and
// the hex SHA-256 of the raw segment (the object header keeps the full key,
// so listing recovers it). Escaping never produces "=", so hashed and plain
// names cannot collide either.
//
// Names starting with "." are the store's own: temp files (".tmp-…") and
// the presign key. Escaping never produces them, so they are never listed.
const (
	objSuffix  = ".o"
	dirSuffix  = ".d"
	hashMark   = "="
	tempPrefix = ".tmp-"
	// maxEscaped keeps every name (plus suffix) well under NAME_MAX (255).
	maxEscaped = 200
)

// safeByte reports whether b stands for itself in an escaped segment.
func safeByte(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.'
}

const hexDigits = "0123456789abcdef"

// escapeSegment returns the canonical escaped form of one key segment.
func escapeSegment(seg string) string {
	var sb strings.Builder
	sb.Grow(len(seg))
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if safeByte(c) && (i > 0 || c != '.') {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&15])
	}
	return sb.String()
}

// unescapeSegment reverses escapeSegment. It accepts only canonical names
// (so one segment has exactly one name), and only segments a valid key can
// contain; anything else is a foreign file and ok is false.
func unescapeSegment(stem string) (seg string, ok bool) {
	if stem == "" || len(stem) > maxEscaped {
		return "", false
	}
	b := make([]byte, 0, len(stem))
	for i := 0; i < len(stem); i++ {
		c := stem[i]
		if c != '%' {
			if !safeByte(c) || (i == 0 && c == '.') {
				return "", false
			}
			b = append(b, c)
			continue
		}
		if i+2 >= len(stem) {
			return "", false
		}
		hi, lo := strings.IndexByte(hexDigits, stem[i+1]), strings.IndexByte(hexDigits, stem[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		b = append(b, byte(hi<<4|lo))
		i += 2
	}
	seg = string(b)
	if !validSegment(seg) || escapeSegment(seg) != stem {
		return "", false
	}
	return seg, true
}

// validSegment reports whether seg can be one "/"-separated segment of a key
// that blob.ValidateKey accepts.
func validSegment(seg string) bool {
	if seg == "" || seg == "." || seg == ".." || !utf8.ValidString(seg) {
		return false
	}
	for _, r := range seg {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}

// hashStem is the name stem of a segment too long to escape in place.
func hashStem(seg string) string {
	sum := sha256.Sum256([]byte(seg))
	return hashMark + hex.EncodeToString(sum[:])
}

// isHashStem reports whether stem has the shape hashStem produces.
func isHashStem(stem string) bool {
	if len(stem) != len(hashMark)+2*sha256.Size || !strings.HasPrefix(stem, hashMark) {
		return false
	}
	for i := len(hashMark); i < len(stem); i++ {
		if strings.IndexByte(hexDigits, stem[i]) < 0 {
			return false
		}
	}
	return true
}

// segmentStem is the name of seg on disk, before its kind suffix.
func segmentStem(seg string) string {
	if e := escapeSegment(seg); len(e) <= maxEscaped {
		return e
	}
	return hashStem(seg)
}

// keyDir returns the path, relative to the root, of the directory that holds
// key's object file, and the file's name. key must be valid.
func keyDir(key string) (dir, name string) {
	segs := strings.Split(key, "/")
	parts := make([]string, 0, len(segs)-1)
	for _, s := range segs[:len(segs)-1] {
		parts = append(parts, segmentStem(s)+dirSuffix)
	}
	return filepath.Join(parts...), segmentStem(segs[len(segs)-1]) + objSuffix
}

// keyPath is the path of key's object file relative to the root.
func keyPath(key string) string {
	dir, name := keyDir(key)
	return filepath.Join(dir, name)
}

// prefixDir maps the complete segments of a listing prefix (those followed
// by "/") to a directory relative to the root, and returns the partial last
// segment that entries there must start with. ok is false when no key can
// have the prefix (a complete segment no key can contain).
func prefixDir(prefix string) (dir, partial string, ok bool) {
	segs := strings.Split(prefix, "/")
	parts := make([]string, 0, len(segs)-1)
	for _, s := range segs[:len(segs)-1] {
		if !validSegment(s) {
			return "", "", false
		}
		parts = append(parts, segmentStem(s)+dirSuffix)
	}
	return filepath.Join(parts...), segs[len(segs)-1], true
}

// nameKind classifies a directory entry's name: an object or a directory
// (with its stem), or neither (temp files, the presign key, foreign files).
type nameKind int

const (
	kindOther nameKind = iota
	kindObject
	kindDir
)

// parseName classifies a directory entry's name and decodes it: s is the
// key segment, or the hash stem when hashed (the segment is then only known
// from an object's header).
func parseName(name string) (kind nameKind, s string, hashed bool) {
	var stem string
	switch {
	case strings.HasPrefix(name, "."):
		return kindOther, "", false
	case strings.HasSuffix(name, objSuffix):
		kind, stem = kindObject, strings.TrimSuffix(name, objSuffix)
	case strings.HasSuffix(name, dirSuffix):
		kind, stem = kindDir, strings.TrimSuffix(name, dirSuffix)
	default:
		return kindOther, "", false
	}
	if isHashStem(stem) {
		return kind, stem, true
	}
	seg, ok := unescapeSegment(stem)
	if !ok {
		return kindOther, "", false
	}
	return kind, seg, false
}
