package layout

import (
	"fmt"
	"image"
	"math"

	"github.com/tallyhq/tally/internal/geom"
	"github.com/tallyhq/tally/ocr"
)

// Warp kinds, as Transform.Kind names them.
const (
	KindPerspective = "perspective" // photos: a homography from four corners
	KindAffine      = "affine"      // scans: rotation (and scale) only
	KindCrop        = "crop"        // native images: a plain cut-out
)

// paperWhite fills crop pixels that fall outside the source image, so that
// OCR sees blank paper rather than a black frame.
const paperWhite = 255

// Transform maps between a receipt crop's normalized coordinates and the
// image's (both origin bottom-left, y up), so that lines OCRed in the crop can
// be placed back on the image and the other way round. The zero Transform is
// the identity.
type Transform struct {
	// Kind names the warp that made the crop (KindPerspective, KindAffine or
	// KindCrop).
	Kind string
	// Width and Height are the crop's size in pixels.
	Width, Height int

	toImage, toReceipt mat3
}

// ToImage maps a point of the crop to the image.
func (t Transform) ToImage(p ocr.Point) ocr.Point { return t.map3(t.toImage, p) }

// ToReceipt maps a point of the image to the crop.
func (t Transform) ToReceipt(p ocr.Point) ocr.Point { return t.map3(t.toReceipt, p) }

func (t Transform) map3(m mat3, p ocr.Point) ocr.Point {
	if m == (mat3{}) {
		return p
	}
	q := m.apply(geom.Pt{X: p.X, Y: p.Y})
	return ocr.Point{X: q.X, Y: q.Y}
}

// Rectify cuts one receipt out of the image and straightens it, so that OCR
// reads it upright and alone: a perspective warp for photos (any other type
// too, as it is exact for every quad), a rotation for scans, a plain crop for
// native images. The crop's size is the receipt's natural one (the mean
// lengths of opposite edges), scaled down if needed so that neither side
// exceeds the source's longer side; pixels are sampled bilinearly, and
// pixels outside the source are white. Corners that are collinear, not
// numbers or not a convex quad give ErrDegenerate; an empty image gives
// ErrEmptyImage.
func Rectify(g *image.Gray, r Region, imageType string) (*image.Gray, Transform, error) {
	src := view(g)
	if src.empty() {
		return nil, Transform{}, ErrEmptyImage
	}
	var q [4]geom.Pt
	for i, p := range r.Bounds.Points() {
		x, y := p.Pixel(src.w, src.h)
		q[i] = geom.Pt{X: x, Y: y}
	}
	if !isConvexQuad(q) {
		return nil, Transform{}, fmt.Errorf("rectify receipt %d: %w: corners %v are not a convex quadrilateral", r.ClusterID, ErrDegenerate, q)
	}

	var (
		kind       string
		outW, outH int
		toSource   mat3 // crop pixel → source pixel (continuous coordinates)
		err        error
	)
	switch imageType {
	case ocr.TypeNative:
		kind = KindCrop
		minX, minY := math.Inf(1), math.Inf(1)
		maxX, maxY := math.Inf(-1), math.Inf(-1)
		for _, p := range q {
			minX, maxX = math.Min(minX, p.X), math.Max(maxX, p.X)
			minY, maxY = math.Min(minY, p.Y), math.Max(maxY, p.Y)
		}
		x0 := int(math.Max(0, math.Floor(minX+1e-9)))
		y0 := int(math.Max(0, math.Floor(minY+1e-9)))
		x1 := int(math.Min(float64(src.w), math.Ceil(maxX-1e-9)))
		y1 := int(math.Min(float64(src.h), math.Ceil(maxY-1e-9)))
		if x1 <= x0 || y1 <= y0 {
			return nil, Transform{}, fmt.Errorf("rectify receipt %d: %w: crop lies outside the image", r.ClusterID, ErrDegenerate)
		}
		outW, outH = x1-x0, y1-y0
		toSource = mat3{1, 0, float64(x0), 0, 1, float64(y0), 0, 0, 1}
	default:
		width := (q[0].Dist(q[1]) + q[3].Dist(q[2])) / 2
		height := (q[0].Dist(q[3]) + q[1].Dist(q[2])) / 2
		scale := math.Min(1, float64(max(src.w, src.h))/math.Max(width, height))
		outW = max(1, int(math.Round(width*scale)))
		outH = max(1, int(math.Round(height*scale)))
		fw, fh := float64(outW), float64(outH)
		rect := [4]geom.Pt{{X: 0, Y: 0}, {X: fw, Y: 0}, {X: fw, Y: fh}, {X: 0, Y: fh}}
		if imageType == ocr.TypeScan {
			kind = KindAffine
			toSource, err = solveAffine(rect, q)
		} else {
			kind = KindPerspective
			toSource, err = solveHomography(rect, q)
		}
		if err != nil {
			return nil, Transform{}, fmt.Errorf("rectify receipt %d: %w", r.ClusterID, err)
		}
	}

	// Normalized crop → crop pixels → source pixels → normalized image.
	cropNorm := mat3{float64(outW), 0, 0, 0, -float64(outH), float64(outH), 0, 0, 1}
	imageNorm := mat3{1 / float64(src.w), 0, 0, 0, -1 / float64(src.h), 1, 0, 0, 1}
	t := Transform{Kind: kind, Width: outW, Height: outH, toImage: imageNorm.mul(toSource).mul(cropNorm)}
	if t.toReceipt, err = t.toImage.inverse(); err != nil {
		return nil, Transform{}, fmt.Errorf("rectify receipt %d: %w", r.ClusterID, err)
	}

	out := image.NewGray(image.Rect(0, 0, outW, outH))
	if kind == KindCrop {
		x0, y0 := int(toSource[2]), int(toSource[5])
		for y := range outH {
			copy(out.Pix[y*out.Stride:y*out.Stride+outW], src.row(y0 + y)[x0:x0+outW])
		}
		return out, t, nil
	}
	warp(src, out, toSource)
	return out, t, nil
}

// warp fills out by sampling src bilinearly at m·(pixel centre) for every
// pixel of out; pixels that land outside src are white.
func warp(src raster, out *image.Gray, m mat3) {
	w, h := float64(src.w), float64(src.h)
	maxX, maxY := float64(src.w-1), float64(src.h-1)
	ow, oh := out.Rect.Dx(), out.Rect.Dy()
	pix, stride := src.pix, src.stride
	for j := range oh {
		cy := float64(j) + 0.5
		// Numerators and denominator are linear along a row.
		nx := m[0]*0.5 + m[1]*cy + m[2]
		ny := m[3]*0.5 + m[4]*cy + m[5]
		d := m[6]*0.5 + m[7]*cy + m[8]
		row := out.Pix[j*out.Stride : j*out.Stride+ow]
		for i := range row {
			sx, sy := nx/d, ny/d
			nx += m[0]
			ny += m[3]
			d += m[6]
			if !(sx >= 0 && sy >= 0 && sx <= w && sy <= h) { // also catches NaN
				row[i] = paperWhite
				continue
			}
			// Pixel centres sit at integers; clamp at the edges.
			x, y := sx-0.5, sy-0.5
			if x < 0 {
				x = 0
			} else if x > maxX {
				x = maxX
			}
			if y < 0 {
				y = 0
			} else if y > maxY {
				y = maxY
			}
			x0, y0 := int(x), int(y)
			fx, fy := x-float64(x0), y-float64(y0)
			dx, dy := 1, stride
			if x0 == src.w-1 {
				dx = 0
			}
			if y0 == src.h-1 {
				dy = 0
			}
			k := y0*stride + x0
			a, b := float64(pix[k]), float64(pix[k+dx])
			c, e := float64(pix[k+dy]), float64(pix[k+dy+dx])
			top := a + (b-a)*fx
			bot := c + (e-c)*fx
			row[i] = uint8(top + (bot-top)*fy + 0.5)
		}
	}
}
