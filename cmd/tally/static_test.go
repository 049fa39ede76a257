package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestLambdaBuildIsStatic builds tally the way `make lambda` does (its tags,
// CGO_ENABLED=0) for this machine's architecture and checks that the binary
// asks for no dynamic loader: a provided.al2023 bootstrap must not depend on
// the libc it happens to find. Importing purego anywhere (the image codecs
// without nodynamic, PaddleOCR without nopaddle) would make it dynamic.
func TestLambdaBuildIsStatic(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LAMBDA_TAGS\s*:=\s*(\S+)`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile defines no LAMBDA_TAGS")
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", string(m[1]), "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", m[1], err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the Lambda binary (-tags %s) is dynamically linked: it has %s", m[1], p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the Lambda binary needs %v", libs)
	}
}
