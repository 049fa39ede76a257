package onnxrt_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/onnxrt"
)

func load(t *testing.T) (*onnxrt.Runtime, string) {
	t.Helper()
	dir := fixtures.PaddleDir(t)
	rt, err := onnxrt.Load(filepath.Join(dir, "libonnxruntime.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	return rt, dir
}

func TestRun(t *testing.T) {
	t.Parallel()
	rt, dir := load(t)
	if !strings.HasPrefix(rt.Version(), "1.") {
		t.Errorf("Version() = %q", rt.Version())
	}
	again, err := onnxrt.Load(filepath.Join(dir, "libonnxruntime.so.1"))
	if err != nil || again != rt {
		t.Errorf("second Load = %p, %v; want the same runtime", again, err)
	}
	s, err := rt.NewSession(filepath.Join(dir, "ch_ppocr_mobile_v2.0_cls_infer.onnx"), onnxrt.SessionOptions{NoArena: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.InputName() == "" {
		t.Error("no input name")
	}
	// The angle classifier takes N×3×48×W and answers N×2 probabilities;
	// sessions run concurrently.
	var wg sync.WaitGroup
	for n := 1; n <= 3; n++ {
		wg.Go(func() {
			in := onnxrt.Tensor{Shape: []int64{int64(n), 3, 48, 192}, Data: make([]float32, n*3*48*192)}
			out, err := s.Run(in)
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.Equal(out.Shape, []int64{int64(n), 2}) || len(out.Data) != 2*n {
				t.Errorf("output %v with %d values, want [%d 2]", out.Shape, len(out.Data), n)
				return
			}
			for i := range n {
				if sum := out.Data[2*i] + out.Data[2*i+1]; sum < 0.99 || sum > 1.01 {
					t.Errorf("probabilities %v do not sum to 1", out.Data[2*i:2*i+2])
				}
			}
		})
	}
	wg.Wait()
	s.Close() // twice is fine
}

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	rt, dir := load(t)
	s, err := rt.NewSession(filepath.Join(dir, "ch_ppocr_mobile_v2.0_cls_infer.onnx"), onnxrt.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name string
		in   onnxrt.Tensor
	}{
		{"no shape", onnxrt.Tensor{}},
		{"too few values", onnxrt.Tensor{Shape: []int64{1, 3, 48, 192}, Data: make([]float32, 10)}},
		{"zero dimension", onnxrt.Tensor{Shape: []int64{0, 3, 48, 192}}},
		{"wrong rank for the model", onnxrt.Tensor{Shape: []int64{3, 48}, Data: make([]float32, 3*48)}},
		{"wrong channels for the model", onnxrt.Tensor{Shape: []int64{1, 1, 48, 192}, Data: make([]float32, 48*192)}},
	}
	for _, tt := range tests {
		if _, err := s.Run(tt.in); !errors.Is(err, onnxrt.ErrRun) {
			t.Errorf("%s: error %v, want ErrRun", tt.name, err)
		}
	}
}

func TestLoadRefusesWhatIsNotONNXRuntime(t *testing.T) {
	t.Parallel()
	text := filepath.Join(t.TempDir(), "lib.so")
	os.WriteFile(text, []byte("not a library"), 0o644)
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.so"), text} {
		if _, err := onnxrt.Load(path); !errors.Is(err, onnxrt.ErrLibrary) {
			t.Errorf("Load(%s): %v, want ErrLibrary", path, err)
		}
	}
}

func TestNewSessionRefusesBadModels(t *testing.T) {
	t.Parallel()
	rt, _ := load(t)
	garbage := filepath.Join(t.TempDir(), "model.onnx")
	os.WriteFile(garbage, []byte("\x08\x07garbage"), 0o644)
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.onnx"), garbage} {
		s, err := rt.NewSession(path, onnxrt.SessionOptions{})
		if !errors.Is(err, onnxrt.ErrModel) || !strings.Contains(err.Error(), path) {
			t.Errorf("NewSession(%s): %v, want ErrModel naming the file", path, err)
		}
		if s != nil {
			s.Close()
		}
	}
}
