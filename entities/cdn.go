package entities

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// The old system stored each rendition size flat, in attributes named
// cdn_{size}_s3_key, cdn_{size}_webp_s3_key and cdn_{size}_avif_s3_key;
// these helpers convert between that and CDNSizes.

// flatSizes returns the flat attributes of sizes, empty keys left out.
func flatSizes(sizes map[string]Rendition) map[string]string {
	out := map[string]string{}
	for size, r := range sizes {
		if size == "" {
			continue
		}
		for suffix, v := range map[string]string{"_s3_key": r.Key, "_webp_s3_key": r.WebPKey, "_avif_s3_key": r.AVIFKey} {
			if v != "" {
				out["cdn_"+size+suffix] = v
			}
		}
	}
	return out
}

// sizeField parses a flat size attribute name; ok is false for any other
// name, including the base cdn_s3_key, cdn_webp_s3_key and cdn_avif_s3_key.
func sizeField(name string) (size, format string, ok bool) {
	mid, found := strings.CutPrefix(name, "cdn_")
	if !found {
		return "", "", false
	}
	if mid, found = strings.CutSuffix(mid, "_s3_key"); !found {
		return "", "", false
	}
	switch {
	case mid == "" || mid == "webp" || mid == "avif":
		return "", "", false
	case strings.HasSuffix(mid, "_webp"):
		size, format = strings.TrimSuffix(mid, "_webp"), "webp"
	case strings.HasSuffix(mid, "_avif"):
		size, format = strings.TrimSuffix(mid, "_avif"), "avif"
	default:
		size = mid
	}
	return size, format, size != ""
}

// addSize records one flat size attribute in sizes (allocating it).
func addSize(sizes *map[string]Rendition, name, value string) {
	size, format, ok := sizeField(name)
	if !ok || value == "" {
		return
	}
	if *sizes == nil {
		*sizes = map[string]Rendition{}
	}
	r := (*sizes)[size]
	switch format {
	case "webp":
		r.WebPKey = value
	case "avif":
		r.AVIFKey = value
	default:
		r.Key = value
	}
	(*sizes)[size] = r
}

// withSizes appends the flat size attributes to a JSON object, in name
// order so the output is deterministic.
func withSizes(obj []byte, sizes map[string]Rendition) ([]byte, error) {
	flat := flatSizes(sizes)
	if len(flat) == 0 {
		return obj, nil
	}
	names := make([]string, 0, len(flat))
	for n := range flat {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.Write(obj[:len(obj)-1])
	for _, n := range names {
		k, _ := json.Marshal(n)
		v, _ := json.Marshal(flat[n])
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// sizesFromJSON collects the flat size attributes of a JSON object.
func sizesFromJSON(data []byte) (map[string]Rendition, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	var sizes map[string]Rendition
	for name, raw := range all {
		if _, _, ok := sizeField(name); !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			continue // null, as the old system wrote absent keys
		}
		addSize(&sizes, name, v)
	}
	return sizes, nil
}

// MarshalJSON writes the image with its rendition sizes flat, as the old
// system's export did.
func (im Image) MarshalJSON() ([]byte, error) {
	type plain Image
	b, err := json.Marshal(plain(im))
	if err != nil {
		return nil, err
	}
	return withSizes(b, im.CDNSizes)
}

// UnmarshalJSON reads an image, collecting the flat rendition sizes.
func (im *Image) UnmarshalJSON(data []byte) error {
	type plain Image
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	sizes, err := sizesFromJSON(data)
	if err != nil {
		return err
	}
	*im = Image(p)
	im.CDNSizes = sizes
	return nil
}

// MarshalJSON writes the receipt with its rendition sizes flat.
func (r Receipt) MarshalJSON() ([]byte, error) {
	type plain Receipt
	b, err := json.Marshal(plain(r))
	if err != nil {
		return nil, err
	}
	return withSizes(b, r.CDNSizes)
}

// UnmarshalJSON reads a receipt, collecting the flat rendition sizes.
func (r *Receipt) UnmarshalJSON(data []byte) error {
	type plain Receipt
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	sizes, err := sizesFromJSON(data)
	if err != nil {
		return err
	}
	*r = Receipt(p)
	r.CDNSizes = sizes
	return nil
}
