package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
)

// The helper process protocol: the test binary re-executes itself with
// -test.run=^TestHelperProcess$ and these variables set, and the child does
// one blob operation on the parent's root.
const (
	envHelper = "TALLY_BLOB_FILE_HELPER" // "slow-put" or "put-if-absent"
	envRoot   = "TALLY_BLOB_FILE_ROOT"
	envKey    = "TALLY_BLOB_FILE_KEY"
	envData   = "TALLY_BLOB_FILE_DATA"
)

// TestHelperProcess is not a test: it is the child of the cross-process
// tests, and skips itself when run normally.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		return // only does something as a child of the crash and cross-process tests
	}
	s, err := Open(os.Getenv(envRoot), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	key := os.Getenv(envKey)
	ctx := context.Background()
	switch mode {
	case "slow-put":
		// Write 1 MiB, tell the parent, then hang mid-object until killed.
		r := io.MultiReader(io.LimitReader(zeros{}, 1<<20), &signalThenBlock{})
		_, err = s.Put(ctx, key, r, blob.PutOptions{ContentType: "application/x-partial"})
		fmt.Fprintln(os.Stderr, "slow put returned:", err)
		os.Exit(3)
	case "put-if-absent":
		_, err = s.PutIfAbsent(ctx, key, strings.NewReader(os.Getenv(envData)), blob.PutOptions{})
		switch {
		case err == nil:
			fmt.Println("won")
		case blob.IsExists(err):
			fmt.Println("lost")
		default:
			fmt.Println("error:", err)
		}
		os.Exit(0)
	}
	os.Exit(4)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// signalThenBlock tells the parent (on stdout) that the data so far is on
// its way to disk, then blocks forever.
type signalThenBlock struct{}

func (*signalThenBlock) Read([]byte) (int, error) {
	fmt.Println("writing")
	select {}
}

func helper(t *testing.T, mode, root, key, data string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envRoot+"="+root, envKey+"="+key, envData+"="+data)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestCrashMidWrite kills (SIGKILL) a writer process in the middle of a
// Put: the object must be the old one (or absent), never a partial one, and
// the temp file it leaves must be invisible.
func TestCrashMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, old := range []string{"the old receipt", ""} {
		t.Run(fmt.Sprintf("old=%q", old), func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			s, err := Open(root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			const key = "receipts/r1.jpg"
			if old != "" {
				if _, err := s.Put(ctx, key, strings.NewReader(old), blob.PutOptions{ContentType: "image/jpeg"}); err != nil {
					t.Fatal(err)
				}
			}

			cmd := helper(t, "slow-put", root, key, "")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || line != "writing\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child said %q, %v; want writing", line, err)
			}
			temps := tempFiles(t, root)
			if len(temps) != 1 {
				t.Errorf("mid-write: temp files %q, want exactly one", temps)
			}
			if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
				t.Fatal(err)
			}
			cmd.Wait()

			// Whatever a reader (this process, or a restarted one) sees is whole.
			for _, st := range []*Store{s, mustOpen(t, root)} {
				rc, info, err := st.Get(ctx, key)
				if old == "" {
					if !errors.Is(err, tally.ErrNotFound) {
						t.Errorf("after crash: Get = %+v, %v; want ErrNotFound", info, err)
					}
				} else {
					if err != nil {
						t.Fatalf("after crash: Get: %v", err)
					}
					b, _ := io.ReadAll(rc)
					rc.Close()
					if string(b) != old || info.ContentType != "image/jpeg" || info.Size != int64(len(old)) {
						t.Errorf("after crash: Get = %q (%+v), want the old object", b, info)
					}
				}
				page, err := st.List(ctx, blob.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, o := range page.Objects {
					keys = append(keys, o.Key)
				}
				want := []string{key}
				if old == "" {
					want = nil
				}
				if !slices.Equal(keys, want) {
					t.Errorf("after crash: List = %q, want %q (no temp files)", keys, want)
				}
			}
			// The crashed writer's temp file is still there (it may belong to
			// a live writer until it is old) and Open removes it once stale.
			temps = tempFiles(t, root)
			if len(temps) != 1 {
				t.Fatalf("after crash: temp files %q, want the crashed writer's", temps)
			}
			if fi, err := os.Stat(temps[0]); err != nil || fi.Size() < 1<<20 {
				t.Errorf("crashed writer's temp file: %v, %v; want over 1 MiB written", fi, err)
			}
			stale := time.Now().Add(-2 * staleTempAge)
			if err := os.Chtimes(temps[0], stale, stale); err != nil {
				t.Fatal(err)
			}
			mustOpen(t, root)
			if temps := tempFiles(t, root); len(temps) != 0 {
				t.Errorf("after reopening: temp files %q, want none", temps)
			}
		})
	}
}

func mustOpen(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var temps []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			temps = append(temps, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return temps
}

// TestPutIfAbsentAcrossProcesses races PutIfAbsent in several processes:
// exactly one wins and its content is what is stored.
func TestPutIfAbsentAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	root := t.TempDir()
	s := mustOpen(t, root)
	const n = 4
	const key = "manifests/collection/v0001.json"
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range n {
		cmds[i] = helper(t, "put-if-absent", root, key, fmt.Sprintf("process %d", i))
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout = outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	winner := -1
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		switch out := strings.TrimSpace(outs[i].String()); {
		case strings.HasSuffix(out, "won") && winner >= 0:
			t.Errorf("processes %d and %d both won", winner, i)
		case strings.HasSuffix(out, "won"):
			winner = i
		case !strings.HasSuffix(out, "lost"):
			t.Errorf("child %d said %q", i, out)
		}
	}
	if winner < 0 {
		t.Fatal("no process won")
	}
	b, err := blob.ReadAll(t.Context(), s, key)
	if err != nil || string(b) != fmt.Sprintf("process %d", winner) {
		t.Errorf("stored %q, %v; process %d won", b, err, winner)
	}
	if temps := tempFiles(t, root); len(temps) != 0 {
		t.Errorf("temp files left: %q", temps)
	}
}
