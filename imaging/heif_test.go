package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"strings"
	"testing"

	"github.com/gen2brain/heic"
)

// box builds an ISO-BMFF box.
func box(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

// fullBox builds a box that starts with a version and 24-bit flags.
func fullBox(typ string, version uint8, flags uint32, parts ...[]byte) []byte {
	vf := binary.BigEndian.AppendUint32(nil, uint32(version)<<24|flags&0xFFFFFF)
	return box(typ, append([][]byte{vf}, parts...)...)
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func ispe(w, h uint32) []byte { return fullBox("ispe", 0, 0, u32(w), u32(h)) }
func irot(angle uint8) []byte { return box("irot", []byte{angle}) }
func infe(id uint16, typ string) []byte {
	return fullBox("infe", 2, 0, u16(id), u16(0), []byte(typ), []byte{0})
}

// ipma associates item 1 with the given 1-based property indices.
func ipma(indices ...uint8) []byte {
	entry := append(u16(1), uint8(len(indices)))
	for _, i := range indices {
		entry = append(entry, 0x80|i) // essential
	}
	return fullBox("ipma", 0, 0, u32(1), entry)
}

// heifFile builds a HEIF file whose item 1 (the primary) has the given type
// and properties; extra boxes go into meta after iprp.
func heifFile(itemType string, properties [][]byte, association []byte, extraItems [][]byte, extraMeta ...[]byte) []byte {
	items := append([][]byte{infe(1, itemType)}, extraItems...)
	iinf := fullBox("iinf", 0, 0, append([][]byte{u16(uint16(len(items)))}, items...)...)
	meta := fullBox("meta", 0, 0, append([][]byte{
		fullBox("pitm", 0, 0, u16(1)),
		iinf,
		box("iprp", box("ipco", properties...), association),
	}, extraMeta...)...)
	return bytes.Join([][]byte{ftyp("heic", "mif1", "heic"), meta, box("mdat", []byte("not decoded"))}, nil)
}

// gridDescription is an ImageGrid with 32-bit sizes, stored in idat and
// located by an iloc (version 1, construction method 1).
func gridDescription(w, h uint32) [][]byte {
	desc := append([]byte{0, 1, 0, 0}, append(u32(w), u32(h)...)...)
	iloc := fullBox("iloc", 1, 0, []byte{0x44, 0x00}, u16(1), // 4-byte offsets and lengths; one item
		u16(1), u16(1), u16(0), u16(1), u32(0), u32(uint32(len(desc))))
	return [][]byte{iloc, box("idat", desc)}
}

func TestInspectHEIFStructure(t *testing.T) {
	t.Parallel()
	hvc1Tile := [][]byte{infe(2, "hvc1")}
	tests := []struct {
		name    string
		data    []byte
		want    Info
		err     error
		mention string
	}{
		{"plain", heifFile("hvc1", [][]byte{ispe(4000, 3000)}, ipma(1), nil),
			Info{Format: HEIC, Width: 4000, Height: 3000, Orientation: 1}, nil, ""},
		{"rotated 90", heifFile("hvc1", [][]byte{ispe(4000, 3000), irot(1)}, ipma(1, 2), nil),
			Info{Format: HEIC, Width: 3000, Height: 4000, Orientation: 1}, nil, ""},
		{"rotated 180", heifFile("hvc1", [][]byte{ispe(4000, 3000), irot(2)}, ipma(1, 2), nil),
			Info{Format: HEIC, Width: 4000, Height: 3000, Orientation: 1}, nil, ""},
		{"clap then irot", heifFile("hvc1", [][]byte{ispe(100, 80), box("clap", u32(90), u32(1), u32(140), u32(2), u32(0), u32(1), u32(0), u32(1)), irot(3)}, ipma(1, 2, 3), nil),
			Info{Format: HEIC, Width: 70, Height: 90, Orientation: 1}, nil, ""},
		{"16-bit property indices", heifFile("hvc1", [][]byte{ispe(640, 480)},
			fullBox("ipma", 0, 1, u32(1), u16(1), []byte{1}, u16(0x8001)), nil),
			Info{Format: HEIC, Width: 640, Height: 480, Orientation: 1}, nil, ""},
		{"grid", heifFile("grid", [][]byte{ispe(200, 100)}, ipma(1), hvc1Tile, gridDescription(200, 100)...),
			Info{Format: HEIC, Width: 200, Height: 100, Orientation: 1}, nil, ""},
		{"grid without ispe", heifFile("grid", nil, ipma(), hvc1Tile, gridDescription(320, 240)...),
			Info{Format: HEIC, Width: 320, Height: 240, Orientation: 1}, nil, ""},
		{"too large", heifFile("hvc1", [][]byte{ispe(20000, 20000)}, ipma(1), nil), Info{}, ErrTooLarge, "20000"},
		{"grid canvas larger than its ispe", heifFile("grid", [][]byte{ispe(100, 100)}, ipma(1), hvc1Tile, gridDescription(30000, 30000)...),
			Info{}, ErrTooLarge, ""},
		{"huge thumbnail", heifFile("hvc1", [][]byte{ispe(100, 100), ispe(9000, 9000)}, ipma(1), nil), Info{}, ErrTooLarge, ""},
		{"grid description missing", heifFile("grid", [][]byte{ispe(100, 100)}, ipma(1), hvc1Tile), Info{}, ErrCorrupt, "location"},
		{"avif item", heifFile("av01", [][]byte{ispe(64, 64)}, ipma(1), nil), Info{}, ErrUnsupported, "AVIF"},
		{"avif grid", heifFile("grid", [][]byte{ispe(64, 64)}, ipma(1), [][]byte{infe(2, "av01")}), Info{}, ErrUnsupported, "AVIF"},
		{"jpeg-coded item", heifFile("jpeg", [][]byte{ispe(64, 64)}, ipma(1), nil), Info{}, ErrUnsupported, "jpeg"},
		{"property index out of range", heifFile("hvc1", [][]byte{ispe(64, 64)}, ipma(1, 5), nil), Info{}, ErrCorrupt, "index"},
		{"no ispe", heifFile("hvc1", nil, ipma(), nil), Info{}, ErrCorrupt, "ispe"},
		{"zero size", heifFile("hvc1", [][]byte{ispe(0, 10)}, ipma(1), nil), Info{}, ErrCorrupt, ""},
		{"sequence only", append(ftyp("msf1", "hevc"), box("moov", []byte("tracks"))...), Info{}, ErrUnsupported, "sequence"},
		{"no meta", append(ftyp("heic", "mif1"), box("mdat")...), Info{}, ErrCorrupt, "meta"},
		{"meta truncated", heifFile("hvc1", [][]byte{ispe(64, 64)}, ipma(1), nil)[:60], Info{}, ErrCorrupt, ""},
	}
	for _, tt := range tests {
		info, err := Inspect(tt.data, Limits{})
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%s: Inspect = %+v, %v; want %v", tt.name, info, err, tt.err)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.mention)
		}
		if info != tt.want {
			t.Errorf("%s: Inspect = %+v, want %+v", tt.name, info, tt.want)
		}
	}
}

func TestNextBoxSizes(t *testing.T) {
	t.Parallel()
	large := append(u32(1), "free"...)
	large = binary.BigEndian.AppendUint64(large, 16+3)
	large = append(large, "abc"...)
	tests := []struct {
		name string
		in   []byte
		typ  string
		body string
		ok   bool
	}{
		{"64-bit size", large, "free", "abc", true},
		{"to the end", append(u32(0), "mdat12345"...), "mdat", "12345", true},
		{"size below header", append(u32(4), "free"...), "", "", false},
		{"size past the end", append(u32(100), "free"...), "", "", false},
		{"short", []byte{0, 0, 0}, "", "", false},
	}
	for _, tt := range tests {
		typ, body, _, err := nextBox(tt.in)
		if (err == nil) != tt.ok || typ != tt.typ || string(body) != tt.body {
			t.Errorf("%s: nextBox = %q %q %v", tt.name, typ, body, err)
		}
	}
}

// The samples that github.com/gen2brain/heic ships in its module.
func TestDecodeHEICSamples(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"test8.heic", "gray.heic"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // also checks that concurrent decodes are safe
			data := readModuleFile(t, heicModule, "testdata", name)
			info, err := Inspect(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := heic.DecodeConfig(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if info.Width != cfg.Width || info.Height != cfg.Height || info.Format != HEIC {
				t.Errorf("Inspect = %+v, decoder's own DecodeConfig %dx%d", info, cfg.Width, cfg.Height)
			}
			img, dinfo, err := Decode(context.Background(), data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if dinfo != info || img.Bounds() != image.Rect(0, 0, info.Width, info.Height) {
				t.Errorf("Decode = %+v %v, Inspect %+v", dinfo, img.Bounds(), info)
			}
			if _, _, err := Decode(context.Background(), data, Limits{MaxPixels: 1000}); !errors.Is(err, ErrTooLarge) {
				t.Errorf("small limit: %v, want ErrTooLarge", err)
			}
			if _, _, err := Decode(context.Background(), data[:len(data)*2/3], Limits{}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("truncated: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestHEICDecoderAppliesRotation documents that the HEIC decoder applies
// irot itself (so Decode must not rotate again), using the iPhone-style
// grid sample with its canvas made non-square and its irot angle edited in
// place.
func TestHEICDecoderAppliesRotation(t *testing.T) {
	t.Parallel()
	orig := readModuleFile(t, heicModule, "testdata", "test.heic")
	variant := func(angle byte) []byte {
		data := bytes.Clone(orig)
		var metaBody []byte
		_ = eachBox(data, func(typ string, body []byte) error {
			if typ == "meta" {
				metaBody = body
			}
			return nil
		})
		m, err := parseHEIFMeta(metaBody)
		if err != nil {
			t.Fatal(err)
		}
		if m.itemTypes[m.primary] != "grid" || len(m.idat) != 8 {
			t.Fatal("sample is not the expected grid image (heic module version changed?)")
		}
		rotated := false
		for _, index := range m.assoc[m.primary] {
			p := m.properties[index-1]
			switch p.typ {
			case "irot":
				p.body[0], rotated = angle, true
			case "ispe":
				binary.BigEndian.PutUint32(p.body[8:12], 1100) // height 1346 → 1100
			}
		}
		if !rotated {
			t.Fatal("sample has no irot property (heic module version changed?)")
		}
		binary.BigEndian.PutUint16(m.idat[6:8], 1100) // the grid's output height
		return data
	}
	upright, info0, err := Decode(context.Background(), variant(0), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	turned, info1, err := Decode(context.Background(), variant(1), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if info0.Width != 1346 || info0.Height != 1100 || info1.Width != 1100 || info1.Height != 1346 {
		t.Fatalf("sizes %+v and %+v, want 1346×1100 and 1100×1346", info0, info1)
	}
	if i, _ := Inspect(variant(1), Limits{}); i != info1 {
		t.Errorf("Inspect %+v, Decode %+v", i, info1)
	}
	// irot angle 1 is 90° anti-clockwise: displayed (x, y) comes from
	// upright (w-1-y, x), as EXIF orientation 8. libheif leaves a few
	// dozen stray luma values along the left edge, so this counts.
	a, b := Gray(upright), Gray(turned)
	mismatches := 0
	for y := range 1346 {
		for x := range 1100 {
			sx, sy := referenceSource(8, x, y, 1346, 1100)
			if b.Pix[b.PixOffset(x, y)] != a.Pix[a.PixOffset(sx, sy)] {
				mismatches++
			}
		}
	}
	if mismatches > 1100*1346/1000 {
		t.Errorf("%d of %d pixels differ from the upright image turned 90° anti-clockwise", mismatches, 1100*1346)
	}
}
