package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkWorkerStart measures a process worker's start: from exec of the
// binary to its "process worker ready" log line (ports opened, queues
// ensured, vector store and embedder ready, about to receive). The data
// directory already exists, as on any start but the first.
func BenchmarkWorkerStart(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "tally")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	data := b.TempDir()
	start := func() time.Duration {
		cmd := exec.Command(bin, "worker", "-role", "process", "-data", data, "-log", "json")
		cmd.Env = append(os.Environ(), "TALLY_RENDITIONS=false")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "process worker ready") {
				return time.Since(t0)
			}
		}
		b.Fatal("worker exited before it was ready")
		return 0
	}
	start() // first start creates the data directory
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		total += start()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
}
