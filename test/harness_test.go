//go:build unix

package e2e_test

// The harness the end-to-end tests share: building toolgate, ports, child
// processes in their own process groups, and the node components.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	buildTimeout  = 3 * time.Minute
	startTimeout  = 45 * time.Second
	clientTimeout = 45 * time.Second
	httpTimeout   = 10 * time.Second
)

var httpClient = &http.Client{Timeout: httpTimeout}

// requireNodeComponents returns test/e2e once node and its packages exist;
// without them it skips, or fails under CI.
func requireNodeComponents(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("e2e")
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		missing = "test/e2e/node_modules is missing"
	}
	if missing == "" {
		return dir
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s: run npm ci --prefix test/e2e", missing)
	}
	t.Skipf("%s: run npm ci --prefix test/e2e to enable the end-to-end test", missing)
	return ""
}

// buildToolgate builds ./cmd/toolgate, or returns TOOLGATE_E2E_BINARY when
// that names a prebuilt binary to test instead (a release build, say).
// e2eSetup is what every end-to-end test starts from: the npm components,
// the toolgate binary and a temporary directory. It skips in -short mode.
func e2eSetup(t *testing.T) (nodeDir, binary, tmp string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	nodeDir = requireNodeComponents(t)
	return nodeDir, buildToolgate(t), t.TempDir()
}

// The binary is built once per test run and shared by the tests.
var build struct {
	once   sync.Once
	binary string
	err    error
	out    []byte
	took   time.Duration
}

func buildToolgate(t *testing.T) string {
	t.Helper()
	if prebuilt := os.Getenv("TOOLGATE_E2E_BINARY"); prebuilt != "" {
		t.Logf("testing the prebuilt binary %s", prebuilt)
		return prebuilt
	}
	build.once.Do(func() {
		repoRoot, err := filepath.Abs("..")
		if err != nil {
			build.err = err
			return
		}
		dir, err := os.MkdirTemp("", "toolgate-e2e-")
		if err != nil {
			build.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		build.binary = filepath.Join(dir, "toolgate")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", build.binary, "./cmd/toolgate")
		cmd.Dir = repoRoot
		start := time.Now()
		build.out, build.err = cmd.CombinedOutput()
		build.took = time.Since(start)
	})
	if build.err != nil {
		t.Fatalf("go build ./cmd/toolgate: %v\n%s", build.err, build.out)
	}
	t.Logf("toolgate built in %.1fs", build.took.Seconds())
	return build.binary
}

// TestMain removes the shared binary after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if build.binary != "" {
		_ = os.RemoveAll(filepath.Dir(build.binary))
	}
	os.Exit(code)
}

// freePorts reserves n distinct loopback ports and releases them for the
// processes about to bind them.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve a loopback port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// process is a child started in its own process group, so stopping it
// also stops whatever it spawned; nothing else is ever signalled.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	once sync.Once
}

func startProcess(t *testing.T, name, dir string, env []string, argv ...string) *process {
	t.Helper()
	p := &process{name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Env = append(baseEnv(), env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("----- %s output -----\n%s", name, p.output())
		}
	})
	return p
}

// baseEnv is the little children need from ours; the rest (a developer's
// stray TOKEN_AUDIENCE, say) must not leak into toolgate's configuration.
func baseEnv() []string {
	var env []string
	for _, key := range []string{"PATH", "HOME", "TMPDIR", "SYSTEMROOT"} {
		if v, ok := os.LookupEnv(key); ok {
			env = append(env, key+"="+v)
		}
	}
	return env
}

// stop sends SIGTERM to the process group, then SIGKILL if it lingers.
func (p *process) stop() {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(2 * time.Second):
			}
		}
	})
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) output() string { return p.out.String() }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(data []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(data)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls check every 50 ms until it reports done, the process
// dies, or the timeout passes.
func eventually(t *testing.T, p *process, what string, timeout time.Duration, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if check() {
			return
		}
		if p != nil && p.exited() {
			t.Fatalf("%s exited while waiting for %s:\n%s", p.name, what, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// startIssuer runs issuer.mjs for resource, signing with a fresh key named
// kid; env adds settings such as SCOPES.
func startIssuer(t *testing.T, nodeDir string, port int, resource, kid string, env ...string) *process {
	t.Helper()
	p := startProcess(t, "issuer "+kid, nodeDir, append([]string{"RESOURCE=" + resource, "KID=" + kid}, env...),
		"node", "issuer.mjs", fmt.Sprint(port))
	eventually(t, p, "the issuer's READY line", startTimeout, func() bool {
		return strings.Contains(p.output(), "READY http://127.0.0.1:")
	})
	return p
}

func waitTCP(t *testing.T, what string, port int) {
	t.Helper()
	eventually(t, nil, what+" to listen", startTimeout, func() bool {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

func waitReady(t *testing.T, p *process, url string) {
	t.Helper()
	eventually(t, p, "GET "+url+" = 200", startTimeout, func() bool {
		resp, err := httpClient.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// parseBearer parses one Bearer challenge (RFC 6750 §3: auth-params of
// quoted strings), as found in WWW-Authenticate or in a tool result's
// _meta["mcp/www_authenticate"].
func parseBearer(t *testing.T, challenge string) map[string]string {
	t.Helper()
	scheme, rest, _ := strings.Cut(challenge, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		t.Fatalf("challenge %q: scheme is not Bearer", challenge)
	}
	params, err := parseAuthParams(rest)
	if err != nil {
		t.Fatalf("challenge %q: %v", challenge, err)
	}
	return params
}

func parseAuthParams(s string) (map[string]string, error) {
	params := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("auth-param %q has no value", s)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		var value string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			if i == len(rest) {
				return nil, fmt.Errorf("unterminated quoted value for %s", name)
			}
			value, rest = b.String(), rest[i+1:]
		} else {
			value, rest, _ = strings.Cut(rest, ",")
			rest = "," + rest
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("auth-param %s repeated", name)
		}
		params[name] = strings.TrimSpace(value)
		s = strings.TrimLeft(strings.TrimSpace(rest), ", ")
	}
	return params, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// runNode runs a node script in nodeDir to completion (killing its process
// group after clientTimeout) and decodes the JSON line it prints last into
// out. The error carries the script's stdout and stderr.
func runNode(nodeDir string, out any, args ...string) error {
	return runNodeEnv(nodeDir, nil, out, args...)
}

// runNodeEnv is runNode with env added to the script's environment.
func runNodeEnv(nodeDir string, env []string, out any, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = nodeDir
	cmd.Env = append(baseEnv(), env...)
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("node %s: %w\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	if err := json.Unmarshal([]byte(lastLines(stdout.String(), 1)), out); err != nil {
		return fmt.Errorf("node %s printed no result line (%v):\n%s\nstderr:\n%s", args[0], err, &stdout, &stderr)
	}
	return nil
}
