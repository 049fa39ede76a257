package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/fixtures"
	_ "github.com/tallyhq/tally/internal/sqlitedb" // registers the "sqlite" driver for integrity checks
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
)

// Environment knobs of the chaos tests. The defaults keep `go test
// ./cmd/tally` to a few minutes; the issue's full run is
// TALLY_CHAOS_N=200 (and TALLY_CHAOS_MOTO_N=10 on moto; 20 is beyond moto, see BENCHMARKS.md).
const (
	envChaosN         = "TALLY_CHAOS_N"          // uploads of the embedded chaos run (default 12)
	envChaosMotoN     = "TALLY_CHAOS_MOTO_N"     // receipts of the moto chaos run (default 3)
	envChaosKillEvery = "TALLY_CHAOS_KILL_EVERY" // kill cadence (default 2s)
	envChaosSeed      = "TALLY_CHAOS_SEED"       // seed of the victim choice (default: random, logged)
)

// envInt is the integer in environment variable name, or def when unset.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// killEvery is the chaos runs' kill cadence.
func killEvery(t testing.TB) time.Duration {
	t.Helper()
	s := os.Getenv(envChaosKillEvery)
	if s == "" {
		return 2 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", envChaosKillEvery, s)
	}
	return d
}

// chaosRand is the random source of the victim choice, seeded from
// envChaosSeed when set (to replay a run) and logged either way.
func chaosRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv(envChaosSeed); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envChaosSeed, s, err)
		}
		seed = n
	}
	t.Logf("victim seed %d (%s=%d replays the choice)", seed, envChaosSeed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// chaosProc is one `tally` child process (serve or a worker) that a chaos
// test kills and starts again. Its stderr (JSON logs) is scanned for the
// line that marks it ready, for serve's address, and for ERROR lines; the
// last lines are kept for failure messages.
type chaosProc struct {
	t     testing.TB
	name  string
	args  []string
	env   []string
	ready string // the log message that marks the process ready

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	killed   bool // the current life was ended by the test
	addr     string
	tail     []string
	errLines []string
	starts   int
	kills    int
	// worked counts the progress lines (progressLogs) of the current life.
	worked int
	// unexpected are exits the test did not cause, with their log tails.
	unexpected []string
}

// newChaosProc describes a process; start runs it.
func newChaosProc(t testing.TB, name string, env []string, args ...string) *chaosProc {
	ready := `"worker started"`
	if args[0] == "serve" {
		ready = `"tally serving"`
	}
	p := &chaosProc{t: t, name: name, args: args, env: env, ready: ready}
	t.Cleanup(p.stop)
	return p
}

// start starts the process and waits until it logs its ready line (failing
// t when it exits first or says nothing for waitfor.Stall).
func (p *chaosProc) start() {
	p.t.Helper()
	if err := p.tryStart(); err != nil {
		p.t.Fatal(err)
	}
}

// tryStart is start returning its failure, for the chaos goroutine (which
// may not call t.Fatal).
func (p *chaosProc) tryStart() error {
	cmd := exec.Command(tallyBinary(p.t), p.args...)
	cmd.Env = p.env
	// A process group of its own, so that a kill takes its Tesseract
	// children too (they would otherwise finish their page and exit,
	// stealing CPU from the survivors).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	ready := make(chan struct{})
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.killed, p.addr, p.worked = cmd, exited, false, "", 0
	p.starts++
	life := p.starts
	p.mu.Unlock()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if testing.Verbose() && os.Getenv("TALLY_CHAOS_LOGS") != "" {
				fmt.Fprintf(os.Stderr, "[%s#%d] %s\n", p.name, life, line)
			}
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 60 {
				p.tail = p.tail[len(p.tail)-40:]
			}
			for _, m := range progressLogs {
				if strings.Contains(line, m) && life == p.starts {
					p.worked++
				}
			}
			if strings.Contains(line, `"level":"ERROR"`) && len(p.errLines) < 200 {
				p.errLines = append(p.errLines, line)
			}
			if strings.Contains(line, `"tally serving"`) {
				var l struct{ Addr string }
				if json.Unmarshal([]byte(line), &l) == nil {
					p.addr = l.Addr
				}
			}
			p.mu.Unlock()
			if strings.Contains(line, p.ready) {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() {
		<-scanned
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		if !p.killed {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s (life %d) exited on its own: %v\n%s", p.name, life, err, strings.Join(p.tail, "\n")))
		}
		p.mu.Unlock()
		close(exited)
	}()
	select {
	case <-ready:
		return nil
	case <-exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("tally %s exited at start: %v\n%s", strings.Join(p.args, " "), p.exitErr, strings.Join(p.tail, "\n"))
	case <-time.After(waitfor.Stall):
		return fmt.Errorf("tally %s not ready within %v", strings.Join(p.args, " "), waitfor.Stall)
	}
}

// kill ends the process with SIGKILL (its whole group) and waits for it.
func (p *chaosProc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd == nil {
		p.mu.Unlock()
		return
	}
	p.killed = true
	p.kills++
	p.mu.Unlock()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// stop ends the process gracefully (SIGINT, as Ctrl-C), killing it when
// it has not exited within 15 seconds; a stopped process is not running.
func (p *chaosProc) stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killed = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// hasWorked reports whether the current life logged progress: a victim
// worth killing, and one whose restart was not wasted. (On moto a worker
// takes seconds to start; killing any worker every 2 s could kill each one
// before it ever did anything.)
func (p *chaosProc) hasWorked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.worked > 0
}

// serveAddr is serve's current listen address.
func (p *chaosProc) serveAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// report returns the process's ERROR log lines and unexpected exits.
func (p *chaosProc) report() (errLines, unexpected []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errLines), slices.Clone(p.unexpected)
}

// embeddedEnv is the environment of a `tally` process on the embedded
// backends under dataDir: every TALLY_ variable of the test's own
// environment dropped, JSON logs, Tesseract (deterministic across runs),
// no renditions (their JPEG/WebP/AVIF encodes would only slow the run).
func embeddedEnv(dataDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TALLY_") && !strings.HasPrefix(kv, "GOOGLE_") {
			env = append(env, kv)
		}
	}
	return append(env, config.EnvDataDir+"="+dataDir, config.EnvLog+"=json", config.EnvRenditions+"=false",
		config.EnvOCREngine+"="+config.OCRTesseract, config.EnvVisibility+"="+chaosVisibility.String(), envRunMain+"=1")
}

// chaosVisibility is the chaos runs' visibility timeout: a killed
// worker's messages come back after it, so the default 2 minutes would
// make the run wait minutes after each kill; heartbeats every third of it
// keep the survivors' messages hidden.
const chaosVisibility = 15 * time.Second

// chaosUpload is one upload of a run: an image for the OCR worker (POST
// /receipts), or an image with an external OCR result (POST /ocr-results).
type chaosUpload struct {
	name   string
	image  []byte
	result []byte
	force  bool
	// of is the index of the upload this one repeats (with force), or -1.
	of int
}

// chaosUploads are n uploads: the fixture receipts (two real OCR results
// through the external path, a real photo of a receipt) and the 60 SROIE
// scans, every fourth upload a forced repeat of an earlier one, and all
// of them forced repeats once the distinct ones are used up.
func chaosUploads(t testing.TB, n int) []chaosUpload {
	t.Helper()
	var distinct []chaosUpload
	ext := func(name, file string, w, h int) {
		res, err := os.ReadFile(fixtures.Path(t, "portfolio", file))
		if err != nil {
			t.Fatal(err)
		}
		distinct = append(distinct, chaosUpload{name: name, image: fixtures.BlankPNG(t, w, h), result: res})
	}
	direct := func(name string, parts ...string) {
		data, err := os.ReadFile(fixtures.Path(t, parts...))
		if err != nil {
			t.Fatal(err)
		}
		distinct = append(distinct, chaosUpload{name: name, image: data})
	}
	direct("000.jpg", "sroie", "img", "000.jpg")
	ext("scan.png", "scan_2f05267d.vision.json", 248, 351)
	ext("bar.png", "bar_receipt.vision.json", 302, 403)
	direct("costco.png", "portfolio", "costco_wholesale.real.png")
	for i := 1; i < 60; i++ {
		name := fmt.Sprintf("%03d.jpg", i)
		if i < 30 {
			direct(name, "sroie", "img", name)
		} else {
			direct(name, "sroie", "extra", "img", name)
		}
	}
	// SROIE holds byte-identical scans (012 = 015, 016 = 018): Tally
	// rightly answers the second with the first image, so keep one.
	seen := map[string]bool{}
	uniq := distinct[:0]
	for _, u := range distinct {
		sum := sha256.Sum256(u.image)
		if k := string(sum[:]) + string(u.result); !seen[k] {
			seen[k] = true
			uniq = append(uniq, u)
		}
	}
	distinct = uniq
	var out []chaosUpload
	next := 0
	for i := range n {
		if (i%4 == 3 || next == len(distinct)) && i > 0 {
			of := (i * 7) % i // an earlier upload, spread over the run
			u := out[of]
			if u.of >= 0 {
				of = u.of
				u = out[of]
			}
			u.force, u.of = true, of
			out = append(out, u)
			continue
		}
		u := distinct[next]
		u.of = -1
		out = append(out, u)
		next++
	}
	return out
}

// post uploads u to the server at addr and returns the image id it got.
func (u chaosUpload) post(addr string) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	target := "/receipts"
	if u.result == nil {
		part, _ := mw.CreateFormFile("file", u.name)
		part.Write(u.image)
	} else {
		target = "/ocr-results"
		part, _ := mw.CreateFormFile("image", u.name)
		part.Write(u.image)
		part, _ = mw.CreateFormFile("result", "result.json")
		part.Write(u.result)
	}
	mw.Close()
	if u.force {
		target += "?force=true"
	}
	resp, err := http.Post("http://"+addr+target, mw.FormDataContentType(), &body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST %s %s: %s: %s", target, u.name, resp.Status, raw)
	}
	var acc upload.Accepted
	if u.result == nil {
		var rr upload.ReceiptsResponse
		if err := json.Unmarshal(raw, &rr); err != nil || len(rr.Receipts) != 1 {
			return "", fmt.Errorf("POST %s %s: %s (%v)", target, u.name, raw, err)
		}
		acc = rr.Receipts[0]
	} else if err := json.Unmarshal(raw, &acc); err != nil {
		return "", fmt.Errorf("POST %s %s: %s (%v)", target, u.name, raw, err)
	}
	if acc.ImageID == "" || acc.Duplicate {
		return "", fmt.Errorf("POST %s %s: no new image: %s", target, u.name, raw)
	}
	return acc.ImageID, nil
}

// pipelineQueues are the pipeline's queues and their dead-letter queues,
// opened through drv.
func pipelineQueues(t testing.TB, drv *env) (work, dead []queue.Queue) {
	t.Helper()
	work = []queue.Queue{drv.queues.OCRJobs, drv.queues.OCRResults, drv.queues.Compaction}
	for _, name := range []string{pipeline.QueueOCRJobs, pipeline.QueueOCRResults, pipeline.QueueCompaction} {
		q, err := drv.ports.Queue.OpenQueue(context.Background(), name+pipeline.DeadLetterSuffix)
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, q)
	}
	return work, dead
}

// depth is every message a queue holds, visible, in flight or delayed.
func depth(t testing.TB, q queue.Queue) (int, queue.Stats) {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatalf("stats of %s: %v", q.Name(), err)
	}
	return st.Visible + st.InFlight + st.Delayed, st
}

// settled reports how much work is done (terminal OCR jobs plus completed
// compaction runs of ids) and whether the pipeline is at rest: every id's
// OCR job finished, nothing PENDING, no message in any work queue, no
// compaction run pending. visible is how many messages wait for a worker.
func settled(t testing.TB, drv *env, ids []string) (done int, rest bool, visible int) {
	t.Helper()
	ctx := context.Background()
	work, _ := pipelineQueues(t, drv)
	busy := 0
	for _, q := range work {
		n, st := depth(t, q)
		busy += n
		visible += st.Visible
	}
	rest = busy == 0
	for _, id := range ids {
		j, err := ocrjob.LatestJob(ctx, drv.ports.Items, id)
		if err != nil {
			t.Fatalf("job of %s: %v", id, err)
		}
		if j.Status == ocrjob.StatusPending {
			rest = false
		} else {
			done++
		}
		runs, err := items.QueryAll(ctx, drv.ports.Items, items.Query{PK: "IMAGE#" + id, SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if r[items.AttrType] == compaction.TypeRun && r["status"] == compaction.StatusCompleted {
				done++
			}
		}
	}
	if !rest {
		return done, false, visible
	}
	pending, err := drv.ports.Items.Query(ctx, items.Query{Index: compaction.PendingIndex, PK: compaction.PendingPK, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := ocrjob.JobsWithStatus(ctx, drv.ports.Items, ocrjob.StatusPending, 1)
	if err != nil {
		t.Fatal(err)
	}
	return done, len(pending.Items) == 0 && len(jobs) == 0, visible
}

// waitSettled waits until the pipeline is at rest on two polls in a row
// (a second look closes the window between one stage's send and the
// next's receive), failing only on no progress for waitfor.Stall.
func waitSettled(t testing.TB, drv *env, ids func() []string) {
	t.Helper()
	calm := 0
	waitfor.ProgressEvery(t, "the pipeline to settle", 500*time.Millisecond, func() (int, bool) {
		done, rest, _ := settled(t, drv, ids())
		if rest {
			calm++
		} else {
			calm = 0
		}
		return done, calm >= 2
	})
}

// chaosCounts are the entities, vectors, runs, jobs and dead letters of
// one run, by kind.
type chaosCounts map[string]int

// kinds are chaosCounts' keys in report order.
var kinds = []string{"images", "lines", "words", "letters", "receipts", "receipt_lines", "receipt_words", "receipt_letters",
	"word_labels", "summaries", "line_items", "vectors/" + vector.CollectionLines, "vectors/" + vector.CollectionWords,
	"compaction_runs_completed", "compaction_runs_not_completed", "jobs_pending", "jobs_failed",
	"dlq/" + pipeline.QueueOCRJobs, "dlq/" + pipeline.QueueOCRResults, "dlq/" + pipeline.QueueCompaction, "vector_duplicates", "vector_pending_deltas"}

// String lists the counts in kinds' order.
func (c chaosCounts) String() string {
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s=%d ", k, c[k])
	}
	return strings.TrimSpace(b.String())
}

// countRun counts everything stored for ids: totals, and per id (the
// entities, labels, runs and vectors of that one image).
func countRun(t testing.TB, drv *env, ids []string) (chaosCounts, []chaosCounts) {
	t.Helper()
	ctx := context.Background()
	total := chaosCounts{}
	per := make([]chaosCounts, len(ids))
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
		c := chaosCounts{}
		set, err := entities.Load(ctx, drv.ports.Items, id)
		if err != nil {
			t.Fatalf("load %s: %v", id, err)
		}
		c["images"], c["lines"], c["words"], c["letters"] = len(set.Images), len(set.Lines), len(set.Words), len(set.Letters)
		c["receipts"], c["receipt_lines"], c["receipt_words"], c["receipt_letters"] = len(set.Receipts), len(set.ReceiptLines), len(set.ReceiptWords), len(set.ReceiptLetters)
		c["word_labels"], c["summaries"], c["line_items"] = len(set.ReceiptWordLabels), len(set.ReceiptSummaries), len(set.ReceiptLineItems)
		runs, err := items.QueryAll(ctx, drv.ports.Items, items.Query{PK: "IMAGE#" + id, SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if r[items.AttrType] != compaction.TypeRun {
				continue
			}
			if r["status"] == compaction.StatusCompleted {
				c["compaction_runs_completed"]++
			} else {
				c["compaction_runs_not_completed"]++
			}
		}
		per[i] = c
	}
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		r, err := drv.store.OpenReader(ctx, coll, drv.cache)
		if err != nil {
			t.Fatalf("open %s: %v", coll, err)
		}
		seen := map[string]int{}
		if err := r.Scan(ctx, func(rec vector.Record) bool {
			seen[rec.ID]++
			parts := strings.Split(rec.ID, "#")
			if len(parts) > 1 {
				if i, ok := index[parts[1]]; ok {
					per[i]["vectors/"+coll]++
				}
			}
			return true
		}); err != nil {
			t.Fatalf("scan %s: %v", coll, err)
		}
		for id, n := range seen {
			if n != 1 {
				total["vector_duplicates"]++
				t.Errorf("%s: vector %s appears %d times", coll, id, n)
			}
		}
		total["vector_pending_deltas"] += r.PendingDeltas()
	}
	for _, c := range per {
		for k, v := range c {
			total[k] += v
		}
	}
	for _, s := range []string{ocrjob.StatusPending, ocrjob.StatusFailed} {
		jobs, err := ocrjob.JobsWithStatus(ctx, drv.ports.Items, s, 10000)
		if err != nil {
			t.Fatal(err)
		}
		total["jobs_"+strings.ToLower(s)] = len(jobs)
		for _, j := range jobs {
			t.Logf("%s job: image %s (%s): %s", s, j.ImageID, j.Filename, j.Reason)
		}
	}
	_, dead := pipelineQueues(t, drv)
	for _, q := range dead {
		n, _ := depth(t, q)
		total["dlq/"+strings.TrimSuffix(q.Name(), pipeline.DeadLetterSuffix)] = n
	}
	return total, per
}

// integrityCheck runs PRAGMA integrity_check on every SQLite file under
// dir and returns the files that do not answer "ok", with the answer.
func integrityCheck(t testing.TB, dir string) map[string]string {
	t.Helper()
	bad := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	if len(files) == 0 {
		bad[dir] = "no SQLite files"
	}
	for _, f := range files {
		db, err := sql.Open("sqlite", "file:"+f+"?_pragma=busy_timeout(30000)")
		if err != nil {
			bad[f] = err.Error()
			continue
		}
		var res string
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
			res = err.Error()
		}
		db.Close()
		if res != "ok" {
			bad[f] = res
		}
	}
	return bad
}

// embeddedRun is the outcome of one run on the embedded backends.
type embeddedRun struct {
	took  time.Duration
	total chaosCounts
	per   []chaosCounts
	kills map[string]int
	// inFlightAtKill sums the messages in flight in the work queues at
	// each worker kill: how much work the kills could catch.
	inFlightAtKill int
	errLogs        []string
}

// runEmbedded starts `tally serve` and one `tally worker` process per
// role on one fresh data directory (SQLite and files), uploads ups
// through serve's API, keeping at most window uploads ahead of OCR, and
// waits until the pipeline is at rest. With chaos, a random worker is
// SIGKILLed every `every` and started again while work is waiting, and
// serve itself is SIGKILLed and started again once, halfway through the
// uploads (between two requests, so no forced upload is retried). It
// counts what was stored once every process has stopped.
func runEmbedded(t *testing.T, ups []chaosUpload, chaos bool, every time.Duration) embeddedRun {
	t.Helper()
	dir := t.TempDir()
	env := embeddedEnv(dir)
	srv := newChaosProc(t, "serve", env, "serve", "-addr", "127.0.0.1:0")
	srv.start()
	var workers []*chaosProc
	for _, role := range roles {
		w := newChaosProc(t, role, env, "worker", "-role", role)
		w.start()
		workers = append(workers, w)
	}
	cfg, err := config.Config{DataDir: dir}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	drv, err := openEnv(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()

	var mu sync.Mutex
	var ids []string
	snapshot := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
	stopChaos := make(chan struct{})
	chaosDone := make(chan []string, 1)
	var killed sync.Map // role → *atomic.Int64
	var inFlightAtKill atomic.Int64
	work, _ := pipelineQueues(t, drv)
	if chaos {
		rng := chaosRand(t)
		go func() {
			var errs []string
			tick := time.NewTicker(every)
			defer tick.Stop()
			defer func() { chaosDone <- errs }()
			for {
				select {
				case <-stopChaos:
					return
				case <-tick.C:
				}
				w := workers[rng.IntN(len(workers))]
				for _, q := range work {
					if st, err := q.Stats(ctx); err == nil {
						inFlightAtKill.Add(int64(st.InFlight))
					}
				}
				w.kill()
				n, _ := killed.LoadOrStore(w.name, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				if err := w.tryStart(); err != nil {
					errs = append(errs, err.Error())
					return
				}
			}
		}()
	} else {
		chaosDone <- nil
	}

	start := time.Now()
	const window = 4
	for i, u := range ups {
		if chaos && i == len(ups)/2 {
			srv.kill()
			srv.start()
		}
		// A client that keeps a few uploads in flight: the run lasts
		// as long as the OCR, so kills land on every stage.
		waitfor.ProgressEvery(t, "OCR to catch up with the uploads", 200*time.Millisecond, func() (int, bool) {
			done, pending := 0, 0
			for _, id := range snapshot() {
				j, err := ocrjob.LatestJob(ctx, drv.ports.Items, id)
				if err != nil {
					t.Fatalf("job of %s: %v", id, err)
				}
				if j.Status == ocrjob.StatusPending {
					pending++
				} else {
					done++
				}
			}
			return done, pending < window
		})
		id, err := u.post(srv.serveAddr())
		if err != nil {
			t.Fatalf("upload %d (%s, force=%v): %v", i, u.name, u.force, err)
		}
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
	}
	if chaos {
		// Kill until every role was killed, at least minKills kills
		// happened, and no message waits for a worker: the last kills
		// still catch work in flight, whose messages come back after
		// their visibility timeout.
		const minKills = 6
		waitfor.ProgressEvery(t, "the chaos to end", 500*time.Millisecond, func() (int, bool) {
			done, rest, visible := settled(t, drv, ids)
			total, roles := 0, 0
			killed.Range(func(_, v any) bool {
				total += int(v.(*atomic.Int64).Load())
				roles++
				return true
			})
			return done + total, rest || visible == 0 && total >= minKills && roles == len(workers)
		})
		close(stopChaos)
	}
	if errs := <-chaosDone; len(errs) > 0 {
		t.Fatalf("restarting a killed worker: %s", strings.Join(errs, "\n"))
	}
	waitSettled(t, drv, snapshot)
	took := time.Since(start)

	res := embeddedRun{took: took, kills: map[string]int{}, inFlightAtKill: int(inFlightAtKill.Load())}
	for _, p := range append([]*chaosProc{srv}, workers...) {
		p.stop()
		errLines, unexpected := p.report()
		res.errLogs = append(res.errLogs, errLines...)
		for _, u := range unexpected {
			t.Errorf("%s", u)
		}
		p.mu.Lock()
		res.kills[p.name] = p.kills
		p.mu.Unlock()
	}
	res.total, res.per = countRun(t, drv, ids)
	for f, r := range integrityCheck(t, dir) {
		t.Errorf("integrity_check %s: %s", f, r)
	}
	return res
}

// compareRuns fails t when chaos stored other counts than calm, in total
// or for any one upload (the same index in both runs).
func compareRuns(t *testing.T, ups []chaosUpload, calm, chaos chaosCounts, calmPer, chaosPer []chaosCounts) {
	t.Helper()
	for _, k := range kinds {
		if calm[k] != chaos[k] {
			t.Errorf("%s: chaos %d, calm %d", k, chaos[k], calm[k])
		}
	}
	shown := 0
	for i := range min(len(calmPer), len(chaosPer)) {
		if fmt.Sprint(calmPer[i]) != fmt.Sprint(chaosPer[i]) && shown < 10 {
			shown++
			t.Errorf("upload %d (%s, force=%v): chaos %v, calm %v", i, ups[i].name, ups[i].force, chaosPer[i], calmPer[i])
		}
	}
	if calm["images"] != len(ups) || calm["receipts"] == 0 || calm["vectors/"+vector.CollectionWords] == 0 {
		t.Errorf("calm run: %v for %d uploads", calm, len(ups))
	}
	for _, k := range []string{"jobs_pending", "compaction_runs_not_completed", "vector_duplicates", "vector_pending_deltas",
		"dlq/" + pipeline.QueueOCRJobs, "dlq/" + pipeline.QueueOCRResults, "dlq/" + pipeline.QueueCompaction} {
		if chaos[k] != 0 {
			t.Errorf("chaos run: %s = %d, want 0", k, chaos[k])
		}
	}
}

// TestChaosEmbedded runs the same uploads twice through `tally serve`
// plus one `tally worker` process per role on the embedded backends
// (SQLite and files in one data directory): once calmly, once while a
// random worker is SIGKILLed every few seconds and started again and
// serve is SIGKILLed and restarted once. Both runs must store exactly the
// same: images, lines, words, letters, receipts and their lines, words and
// letters, word labels, summaries, line items, vectors per collection and
// completed compaction runs, in total and per upload; nothing PENDING, no
// dead letter, no duplicate vector, every SQLite file intact.
//
// serve has no API-only mode (it always runs every role too), so each
// role has two consumers, serve's and the worker's; the kills hit the
// workers, the one restart hits serve with its embedded workers.
//
// The default is 12 uploads; TALLY_CHAOS_N=200 is the full run.
func TestChaosEmbedded(t *testing.T) {
	t.Parallel()
	n := envInt(t, envChaosN, 12)
	ups := chaosUploads(t, n)
	forced := 0
	for _, u := range ups {
		if u.force {
			forced++
		}
	}
	every := killEvery(t)
	calm := runEmbedded(t, ups, false, every)
	t.Logf("calm: %d uploads (%d forced repeats) settled in %v: %v", n, forced, calm.took.Round(time.Millisecond), calm.total)
	chaos := runEmbedded(t, ups, true, every)
	t.Logf("chaos: settled in %v, kills %v (messages in flight at the worker kills, summed: %d): %v", chaos.took.Round(time.Millisecond), chaos.kills, chaos.inFlightAtKill, chaos.total)
	for _, l := range chaos.errLogs {
		t.Logf("chaos ERROR log: %s", l)
	}
	for _, l := range calm.errLogs {
		t.Logf("calm ERROR log: %s", l)
	}
	compareRuns(t, ups, calm.total, chaos.total, calm.per, chaos.per)
}

// motoRun submits receipts (the real scan result cut to lines lines,
// through the external-OCR path, each on an image of its own) to one
// `tally worker` process per role for process and compact on moto's SQS,
// S3 and DynamoDB, SIGKILLing a random one every `every` (and starting it
// again) when chaos, until no message waits for a worker; it waits until
// the pipeline is at rest and counts.
func motoRun(t *testing.T, srv *awstest.Server, receipts, lines int, chaos bool, every time.Duration) (time.Duration, chaosCounts, []chaosCounts, map[string]int) {
	t.Helper()
	cfg := awsConfig(t, srv)
	cfg.Renditions = false
	serial := srv.Serial(t) // see scaleOut: moto loses concurrent writes
	cfg.ItemsURL += "&endpoint=" + serial
	cfg.VectorBlobURL += "&endpoint=" + serial
	ctx := context.Background()
	drv, err := openEnv(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	up, err := upload.New(upload.Config{Store: drv.ocrStore(), Jobs: drv.queues.OCRJobs, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var workers []*chaosProc
	for _, role := range []string{"process", "compact"} {
		env := append(workerEnv(cfg, filepath.Join(cfg.DataDir, role)), config.EnvVisibility+"="+chaosVisibility.String())
		w := newChaosProc(t, role, env, "worker", "-role", role)
		w.start()
		workers = append(workers, w)
	}
	result := scaleOutResult(t, lines)
	start := time.Now()
	var ids []string
	for i := range receipts {
		acc, err := up.SubmitOCR(ctx, "scan.png", fixtures.BlankPNG(t, 248, 350+i), result, false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, acc.ImageID)
	}
	if chaos {
		rng := chaosRand(t)
		tick := time.NewTicker(every)
		// Kill until the pipeline is at rest, or until each role was
		// killed, at least 3 kills happened and no message waits.
		// Only a worker that did something since it started is a victim,
		// so every life makes progress; progress is the work done, not
		// the kills.
		killed := map[string]int{}
		waitfor.ProgressEvery(t, "the chaos to end", 500*time.Millisecond, func() (int, bool) {
			done, rest, visible := settled(t, drv, ids)
			total := 0
			for _, n := range killed {
				total += n
			}
			if rest || visible == 0 && total >= 3 && len(killed) == len(workers) {
				return done, true
			}
			select {
			case <-tick.C:
				var victims []*chaosProc
				for _, w := range workers {
					if w.hasWorked() {
						victims = append(victims, w)
					}
				}
				if len(victims) > 0 {
					w := victims[rng.IntN(len(victims))]
					w.kill()
					killed[w.name]++
					w.start()
				}
			default:
			}
			return done, false
		})
		tick.Stop()
	}
	waitSettled(t, drv, func() []string { return ids })
	took := time.Since(start)
	kills := map[string]int{}
	for _, w := range workers {
		w.stop()
		errLines, unexpected := w.report()
		for _, l := range errLines {
			t.Logf("%s ERROR log: %s", w.name, l)
		}
		for _, u := range unexpected {
			t.Errorf("%s", u)
		}
		kills[w.name] = w.kills
	}
	total, per := countRun(t, drv, ids)
	return took, total, per, kills
}

// TestChaosMoto is TestChaosEmbedded's check for the process and
// compaction roles as separate `tally worker` processes on moto's SQS,
// S3 and DynamoDB: a calm run of one receipt gives what each receipt must
// store; a chaos run of several (default 3, TALLY_CHAOS_MOTO_N=10 for the
// issue's run), with a random worker SIGKILLed every few seconds and
// started again, must store exactly that for every receipt, with nothing
// pending, no dead letter and no duplicate vector. Receipts are cut to 8
// lines: moto's DynamoDB sets the pace (see TestScaleOutLosesAndDuplicatesNothing).
func TestChaosMoto(t *testing.T) {
	t.Parallel()
	srv := awstest.Shared(t)
	n := envInt(t, envChaosMotoN, 3)
	const lines = 8
	every := killEvery(t)
	took, calm, _, _ := motoRun(t, srv, 1, lines, false, every)
	t.Logf("calm: 1 receipt in %v: %v", took.Round(time.Millisecond), calm)
	took, chaos, per, kills := motoRun(t, srv, n, lines, true, every)
	t.Logf("chaos: %d receipts in %v, kills %v: %v", n, took.Round(time.Millisecond), kills, chaos)
	want := chaosCounts{}
	for _, k := range kinds {
		if !strings.HasPrefix(k, "dlq/") && !strings.HasPrefix(k, "jobs_") && !strings.HasPrefix(k, "vector_") {
			want[k] = calm[k]
		}
	}
	for i, c := range per {
		for k, v := range want {
			if c[k] != v {
				t.Errorf("receipt %d: %s = %d, calm run's receipt has %d", i, k, c[k], v)
			}
		}
	}
	if calm["receipts"] == 0 || calm["vectors/"+vector.CollectionLines] == 0 {
		t.Errorf("calm run stored %v", calm)
	}
	for _, k := range []string{"jobs_pending", "compaction_runs_not_completed", "vector_duplicates", "vector_pending_deltas",
		"dlq/" + pipeline.QueueOCRResults, "dlq/" + pipeline.QueueCompaction} {
		if chaos[k] != calm[k] || chaos[k] != 0 {
			t.Errorf("%s: chaos %d, calm %d, want 0", k, chaos[k], calm[k])
		}
	}
}
