package layout

import (
	"fmt"
	"math"

	"github.com/tallyhq/tally/internal/geom"
)

// mat3 is a row-major 3×3 matrix acting on homogeneous points (x, y, 1).
type mat3 [9]float64

func identity3() mat3 { return mat3{1, 0, 0, 0, 1, 0, 0, 0, 1} }

// mul returns m·n (n applies first).
func (m mat3) mul(n mat3) mat3 {
	var r mat3
	for i := range 3 {
		for j := range 3 {
			r[3*i+j] = m[3*i]*n[j] + m[3*i+1]*n[3+j] + m[3*i+2]*n[6+j]
		}
	}
	return r
}

// apply maps p through m, dividing by the homogeneous coordinate.
func (m mat3) apply(p geom.Pt) geom.Pt {
	w := m[6]*p.X + m[7]*p.Y + m[8]
	return geom.Pt{X: (m[0]*p.X + m[1]*p.Y + m[2]) / w, Y: (m[3]*p.X + m[4]*p.Y + m[5]) / w}
}

// inverse returns m⁻¹ by the adjugate, or ErrDegenerate for a singular m.
func (m mat3) inverse() (mat3, error) {
	c00 := m[4]*m[8] - m[5]*m[7]
	c01 := m[5]*m[6] - m[3]*m[8]
	c02 := m[3]*m[7] - m[4]*m[6]
	det := m[0]*c00 + m[1]*c01 + m[2]*c02
	var scale float64
	for _, v := range m {
		scale = math.Max(scale, math.Abs(v))
	}
	if scale == 0 || math.Abs(det) <= 1e-12*scale*scale*scale || math.IsNaN(det) || math.IsInf(det, 0) {
		return mat3{}, fmt.Errorf("%w: singular transform", ErrDegenerate)
	}
	inv := mat3{
		c00, m[2]*m[7] - m[1]*m[8], m[1]*m[5] - m[2]*m[4],
		c01, m[0]*m[8] - m[2]*m[6], m[2]*m[3] - m[0]*m[5],
		c02, m[1]*m[6] - m[0]*m[7], m[0]*m[4] - m[1]*m[3],
	}
	for i := range inv {
		inv[i] /= det
	}
	return inv, nil
}

// similarityNormalizer returns the matrix that moves the points' centroid to
// the origin and scales their mean distance from it to √2 (Hartley's
// conditioning), which keeps the 8×8 solve accurate with pixel-sized inputs.
func similarityNormalizer(ps [4]geom.Pt) (mat3, error) {
	var c geom.Pt
	for _, p := range ps {
		if !p.Finite() {
			return mat3{}, fmt.Errorf("%w: corner %v is not a number", ErrDegenerate, p)
		}
		c = c.Add(p)
	}
	c = c.Scale(0.25)
	var d float64
	for _, p := range ps {
		d += p.Dist(c)
	}
	d /= 4
	if d == 0 {
		return mat3{}, fmt.Errorf("%w: all corners coincide", ErrDegenerate)
	}
	s := math.Sqrt2 / d
	return mat3{s, 0, -s * c.X, 0, s, -s * c.Y, 0, 0, 1}, nil
}

// solveHomography returns H with H·src[i] = dst[i] for the four point pairs.
// Three collinear points on either side make the mapping undefined:
// ErrDegenerate.
func solveHomography(src, dst [4]geom.Pt) (mat3, error) {
	ts, err := similarityNormalizer(src)
	if err != nil {
		return mat3{}, fmt.Errorf("source: %w", err)
	}
	td, err := similarityNormalizer(dst)
	if err != nil {
		return mat3{}, fmt.Errorf("destination: %w", err)
	}
	var s, d [4]geom.Pt
	for i := range 4 {
		s[i], d[i] = ts.apply(src[i]), td.apply(dst[i])
	}
	if collinearTriple(s) || collinearTriple(d) {
		return mat3{}, fmt.Errorf("%w: three corners are collinear", ErrDegenerate)
	}
	// Unknowns h0..h7 with h8 = 1:
	// x' = (h0 x + h1 y + h2) / (h6 x + h7 y + 1), likewise y' with h3..h5.
	var a [8][9]float64
	for i := range 4 {
		x, y, u, v := s[i].X, s[i].Y, d[i].X, d[i].Y
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -x * u, -y * u, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -x * v, -y * v, v}
	}
	h, err := gaussSolve8(a)
	if err != nil {
		return mat3{}, err
	}
	hn := mat3{h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1}
	tdInv, err := td.inverse()
	if err != nil {
		return mat3{}, err
	}
	m := tdInv.mul(hn).mul(ts)
	if m[8] != 0 {
		for i := range m {
			m[i] /= m[8]
		}
	}
	return m, nil
}

// collinearTriple reports whether any three of the (conditioned) points are
// nearly on one line.
func collinearTriple(p [4]geom.Pt) bool {
	for skip := range 4 {
		var t []geom.Pt
		for i := range 4 {
			if i != skip {
				t = append(t, p[i])
			}
		}
		if geom.TriangleArea(t[0], t[1], t[2]) < 1e-6 {
			return true
		}
	}
	return false
}

// gaussSolve8 solves the augmented 8×9 system by Gaussian elimination with
// partial pivoting.
func gaussSolve8(a [8][9]float64) ([8]float64, error) {
	const n = 8
	for col := range n {
		p := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[p][col]) {
				p = r
			}
		}
		if math.Abs(a[p][col]) < 1e-12 || math.IsNaN(a[p][col]) {
			return [8]float64{}, fmt.Errorf("%w: homography system is singular", ErrDegenerate)
		}
		a[col], a[p] = a[p], a[col]
		for r := col + 1; r < n; r++ {
			f := a[r][col] / a[col][col]
			for c := col; c <= n; c++ {
				a[r][c] -= f * a[col][c]
			}
		}
	}
	var x [8]float64
	for r := n - 1; r >= 0; r-- {
		s := a[r][n]
		for c := r + 1; c < n; c++ {
			s -= a[r][c] * x[c]
		}
		x[r] = s / a[r][r]
	}
	return x, nil
}

// solveAffine returns the affine map (bottom row 0 0 1) sending src[0], src[1],
// src[3] to dst[0], dst[1], dst[3]: the TL, TR and BL corners fix a
// rotation, scale and shear, which is all a flatbed scan needs.
func solveAffine(src, dst [4]geom.Pt) (mat3, error) {
	// Map the unit frame to each triangle, then compose.
	frame := func(q [4]geom.Pt) mat3 {
		e1, e2 := q[1].Sub(q[0]), q[3].Sub(q[0])
		return mat3{e1.X, e2.X, q[0].X, e1.Y, e2.Y, q[0].Y, 0, 0, 1}
	}
	fs, fd := frame(src), frame(dst)
	inv, err := fs.inverse()
	if err != nil {
		return mat3{}, err
	}
	if _, err := fd.inverse(); err != nil {
		return mat3{}, err
	}
	return fd.mul(inv), nil
}
