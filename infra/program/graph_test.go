package program

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCommittedGraphsAreCurrent regenerates every graph and compares it
// with the committed file, so the graphs in review match the code.
func TestCommittedGraphsAreCurrent(t *testing.T) {
	dir := filepath.Join("..", "graphs")
	var want []string
	for _, v := range Variants {
		want = append(want, v.Name+".json")
		got, err := GenerateGraph(v)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(dir, v.Name+".json"))
		if err != nil {
			t.Fatalf("%v (run `go run ./cmd/graph -out graphs` in infra/)", err)
		}
		if string(got) != string(committed) {
			t.Errorf("graphs/%s.json is stale: run `go run ./cmd/graph -out graphs` in infra/", v.Name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !slices.Contains(want, e.Name()) {
			t.Errorf("graphs/%s belongs to no variant", e.Name())
		}
	}
}

// TestGraphIsStable: two runs give byte-identical output although the SDK
// registers resources concurrently.
func TestGraphIsStable(t *testing.T) {
	a, err := GenerateGraph(Variants[1])
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateGraph(Variants[1])
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Error("two runs of the same variant differ")
	}
}
