package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/textindex"
	"github.com/tallyhq/tally/textindex/sqlite"
	"github.com/tallyhq/tally/textindex/textindextest"
)

func open(t testing.TB, path string) *sqlite.Index {
	t.Helper()
	ix, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func TestConformance(t *testing.T) {
	textindextest.Run(t, func(t *testing.T) textindex.Index {
		return open(t, filepath.Join(t.TempDir(), "text.db"))
	}, textindextest.Features{
		FoldsDiacritics: true,
		Reopen: func(t *testing.T, ix textindex.Index) textindex.Index {
			return open(t, ix.(*sqlite.Index).Path())
		},
	})
}

// TestNoFTS5SyntaxErrors sends inputs that are FTS5 syntax, SQL or
// otherwise hostile: each is either found as text or rejected as an invalid
// argument, never an SQLite error.
func TestNoFTS5SyntaxErrors(t *testing.T) {
	ix := open(t, filepath.Join(t.TempDir(), "text.db"))
	ctx := t.Context()
	if err := ix.Put(ctx, "img", []textindex.Doc{
		{RowID: 1, Text: `NEAR "the" door * x-ray col:term ^start OR AND NOT 寿司 🍣 café`},
	}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`"`, `*`, `NEAR(`, `NEAR(a b, 2)`, `a OR`, `OR`, `a AND`, `NOT`, `a NOT b`, `-x`, `col:term`, `text:term`,
		`{text}:x`, `{text image_id}:x`, `- text : x`, `^x`, `x^`, `a + b`, `(a`, `a)`, `"a" + "b"`, `a*b`, `*a`,
		`"a"*`, `"a"**`, `""`, `" "`, `'`, `\`, `\"`, `%`, `$`, `.`, `,`, `:`, `::`, `{`, `}`, `[`, `]`,
		"\x00", "\x00milk", "\xff\xfe", "\u202emilk", "\u200b", "café", "CAFÉ", "寿司", "🍣", "🍣 寿司", "👨‍👩‍👧",
		"x' OR 1=1 --", "'); DROP TABLE text_docs; --", "MATCH", "rank", "bm25", "rowid:1",
	} {
		_, err := ix.Search(ctx, textindex.Query{Text: q})
		if err != nil && !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Search(%q): %v", q, err)
		}
	}
	for q, want := range map[string]int{`NEAR()`: 1, `"the"`: 1, `col:term`: 1, `-x`: 1, `^start`: 1, `a OR`: 0, `CAFÉ`: 1, `🍣 寿司`: 1} {
		hits, err := ix.Search(ctx, textindex.Query{Text: q})
		if err != nil || len(hits) != want {
			t.Errorf("Search(%q) = %d hits, %v; want %d", q, len(hits), err, want)
		}
	}
}

func FuzzSearch(f *testing.F) {
	for _, s := range []string{`"`, `*`, `NEAR(`, `a OR`, `-x`, `col:term`, `^x`, "寿司", "🍣", `"grand tot"*`} {
		f.Add(s)
	}
	ix, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "text.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer ix.Close()
	if err := ix.Put(context.Background(), "img", []textindex.Doc{{RowID: 1, Text: "GRAND TOTAL 41.07 NEAR OR x-ray 寿司"}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		_, err := ix.Search(context.Background(), textindex.Query{Text: q})
		if err != nil && !errors.Is(err, tally.ErrInvalidArgument) {
			t.Fatalf("Search(%q): %v", q, err)
		}
	})
}

// TestTwoOpens has two Index values on one file write and read at once,
// each from several goroutines, as two processes would.
func TestTwoOpens(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "text.db")
	ixs := []*sqlite.Index{open(t, path), open(t, path)}
	ctx := t.Context()
	const perWriter = 25
	var wg sync.WaitGroup
	errs := make(chan error, 4*perWriter*2)
	for w := range 4 {
		ix := ixs[w%2]
		wg.Go(func() {
			for i := range perWriter {
				id := fmt.Sprintf("w%d-%d", w, i)
				doc := textindex.Doc{ReceiptID: 1, RowID: 1, Text: fmt.Sprintf("WRITER%d SHARED ROW %d", w, i)}
				if err := ix.Put(ctx, id, []textindex.Doc{doc}); err != nil {
					errs <- err
				}
				if _, err := ix.Search(ctx, textindex.Query{Text: "shared"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, ix := range ixs {
		hits, err := ix.Search(ctx, textindex.Query{Text: "shared row", Limit: textindex.MaxLimit})
		if err != nil || len(hits) != 4*perWriter {
			t.Errorf("index %d: %d hits, %v; want %d", i, len(hits), err, 4*perWriter)
		}
	}
}

// Helper-process protocol: TestTwoProcesses re-executes this test binary
// with -test.run=^TestHelperProcess$ and these variables set.
const (
	envPath   = "TALLY_TEXTINDEX_PATH"
	envWriter = "TALLY_TEXTINDEX_WRITER"
)

// TestHelperProcess is not a test: it is the body of the writer processes
// TestTwoProcesses starts. It waits for a line on stdin, then Puts 50
// images (and searches after each), and prints "done".
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(envPath)
	if path == "" {
		return // only does something as a child of TestTwoProcesses
	}
	w := os.Getenv(envWriter)
	ctx := context.Background()
	ix, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(2)
	}
	for i := range 50 {
		id := fmt.Sprintf("%s-%d", w, i)
		docs := []textindex.Doc{
			{ReceiptID: 1, RowID: 1, Text: "PROCESS" + w + " ROW"},
			{ReceiptID: 1, RowID: 2, Text: "SHARED TOTAL " + strconv.Itoa(i)},
		}
		// The same image from both processes, too: last writer wins, whole.
		if err := ix.Put(ctx, id, docs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := ix.Put(ctx, "contended", docs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if _, err := ix.Search(ctx, textindex.Query{Text: "shared total"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	ix.Close()
	fmt.Println("done")
	os.Exit(0)
}

// TestTwoProcesses has two OS processes write one index file at once.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "text.db")
	ix := open(t, path)
	type child struct {
		cmd *exec.Cmd
		in  *os.File
		out *bufio.Reader
	}
	var children []child
	for _, w := range []string{"A", "B"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), envPath+"="+path, envWriter+"="+w)
		cmd.Stderr = os.Stderr
		inR, inW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = inR
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		inR.Close()
		t.Cleanup(func() {
			inW.Close()
			cmd.Process.Kill()
			cmd.Wait()
		})
		children = append(children, child{cmd, inW, bufio.NewReader(out)})
	}
	for _, c := range children {
		if line, err := c.out.ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("helper said %q, %v", line, err)
		}
	}
	for _, c := range children {
		fmt.Fprintln(c.in, "go")
	}
	for _, c := range children {
		if line, err := c.out.ReadString('\n'); err != nil || !strings.HasPrefix(line, "done") {
			t.Fatalf("helper said %q, %v", line, err)
		}
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	ctx := t.Context()
	for _, w := range []string{"A", "B"} {
		hits, err := ix.Search(ctx, textindex.Query{Text: "process" + w, Limit: textindex.MaxLimit})
		if err != nil || len(hits) != 50+1 && len(hits) != 50 {
			t.Errorf("process%s: %d hits, %v; want 50 images (+1 if it wrote the contended image last)", w, len(hits), err)
		}
	}
	hits, err := ix.Search(ctx, textindex.Query{Text: "shared total", Limit: textindex.MaxLimit})
	if err != nil || len(hits) != 2*50+1 {
		t.Errorf("shared total: %d hits, %v; want %d", len(hits), err, 2*50+1)
	}
	contended, err := ix.Search(ctx, textindex.Query{Text: "row", Limit: textindex.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range contended {
		if h.ImageID == "contended" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the contended image has %d PROCESS rows, want 1 (one writer's Put, whole)", n)
	}
}

// TestOpenErrors: a path that cannot be a database fails at Open.
func TestOpenErrors(t *testing.T) {
	if _, err := sqlite.Open(t.Context(), ""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	dir := t.TempDir()
	if _, err := sqlite.Open(t.Context(), dir); err == nil {
		t.Error("Open(a directory) succeeded")
	}
}

// TestUseAfterClose: a closed index reports errors instead of panicking,
// and Close is idempotent.
func TestUseAfterClose(t *testing.T) {
	ix, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "text.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := ix.Put(t.Context(), "img", nil); err == nil {
		t.Error("Put after Close succeeded")
	}
	if _, err := ix.Search(t.Context(), textindex.Query{Text: "milk"}); err == nil {
		t.Error("Search after Close succeeded")
	}
}
