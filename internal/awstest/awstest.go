// Package awstest starts moto_server, the AWS emulator, on a free loopback
// port for tests of the AWS adapters, and builds an aws.Config that talks to
// it. moto_server is a required test tool (the Makefile installs it with
// pip when it is absent), so a missing binary fails the test rather than
// skipping it.
package awstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tallyhq/tally/internal/awsenv"
)

// Region is the region every emulator test uses.
const Region = "us-east-1"

// Server is one running moto_server.
type Server struct {
	// Endpoint is its base URL, e.g. http://127.0.0.1:41234.
	Endpoint string
	cmd      *exec.Cmd
}

// Start runs a fresh moto_server for the test and stops it when the test
// ends. Tests that can share one emulator should use Shared instead.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns one moto_server for the whole test binary, started on
// first use; tests keep apart by unique resource names. Main stops it when
// the tests end, and the kernel kills it if the test process dies first.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// Main runs a package's tests and then stops the shared server. Call it
// from TestMain in packages that use Shared.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

func start() (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server not found (install it with: pip install 'moto[server]'; make test does): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "MOTO_ALLOW_NONEXISTENT_REGION=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("moto_server exited at start: %v", err)
		default:
		}
		resp, err := http.Get(s.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("moto_server did not answer on %s within 30s", s.Endpoint)
}

func (s *Server) stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
}

// Options are awsenv options pointing at this server with fixed test
// credentials.
func (s *Server) Options() awsenv.Options {
	return awsenv.Options{Region: Region, Endpoint: s.Endpoint, AccessKeyID: "testing", SecretAccessKey: "testing"}
}

// Config loads an aws.Config for this server.
func (s *Server) Config(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := awsenv.Load(context.Background(), s.Options())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Reset clears every resource in the emulator (moto's reset API).
func (s *Server) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Serial returns the endpoint of a proxy in front of the server that passes
// the requests moto cannot take concurrently one at a time (DynamoDB
// requests, and S3 conditional writes), and every other request at once.
// moto's DynamoDB is not safe under concurrent requests: a cancelled
// TransactWriteItems restores the whole table from a copy taken when it
// began, losing writes other clients made meanwhile. moto's S3 checks
// If-None-Match and then writes without a lock, so racing conditional
// writers can all "win". AWS has neither behaviour, so tests that write
// from many goroutines or processes at once point those ports here; the
// adapters' own requests are unchanged. Long polls (SQS) still run
// concurrently. A request is forwarded to its end even when its client
// has gone (a killed worker), so one at a time holds inside moto too.
func (s *Server) Serial(t testing.TB) string {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var dynamo, s3cond sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_"):
			dynamo.Lock()
			defer dynamo.Unlock()
		case r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Match") != "":
			s3cond.Lock()
			defer s3cond.Unlock()
		}
		// Forward without the client's cancellation: a client that is
		// killed or times out mid-request must not release the lock while
		// moto is still executing its request, or the next one runs
		// concurrently with it (moto then loses writes, or fails with
		// "dictionary changed size during iteration" copying a table).
		proxy.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}
