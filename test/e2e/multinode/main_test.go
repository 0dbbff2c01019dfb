package multinode

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/policy/store/postgres/pgtest"
)

var (
	binary  string // the easgate binary built for the suite
	cluster *pgtest.Cluster
)

func TestMain(m *testing.M) {
	if os.Getenv("EASGATE_E2E_MULTINODE") != "1" {
		fmt.Println("skipping the multi-node suite: set EASGATE_E2E_MULTINODE=1")
		os.Exit(0)
	}
	if pgtest.BinDir() == "" {
		if os.Getenv("CI") == "true" {
			fmt.Println("FAIL: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: CI must install postgresql")
			os.Exit(1)
		}
		fmt.Println("skipping the multi-node suite: PostgreSQL server binaries not found (Debian package postgresql)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "easgate-multinode-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "easgate")
	if out, err := exec.Command("go", "build", "-o", binary, "github.com/easgate/easgate/cmd/easgate").CombinedOutput(); err != nil {
		fmt.Printf("building easgate: %v\n%s", err, out)
		os.Exit(1)
	}
	if cluster, err = pgtest.Start(); err != nil {
		fmt.Println(err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	cluster.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// timeScale is the fake CAS's and the phones' time scale: a 3540 s
// heartbeat is held 59 s.
const timeScale = 60

// env is one test's world: a database, a fake CAS and the nodes.
type env struct {
	t      *testing.T
	db     *pgtest.Database
	pwFile string
	cas    *bench.FakeCAS
	casURL string
	nodes  []*node
}

func newEnv(t *testing.T, casCfg bench.FakeCASConfig) *env {
	t.Helper()
	db, err := cluster.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, pwFile: filepath.Join(t.TempDir(), "db.password")}
	if err := os.WriteFile(e.pwFile, []byte(db.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	casCfg.TimeScale = timeScale
	e.cas = bench.NewFakeCAS(casCfg)
	addr, err := e.cas.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.casURL = addr
	t.Cleanup(func() { e.cas.Close() })
	return e
}

// node is one `easgate serve` process.
type node struct {
	name        string
	addr, admin string
	dir         string
	cmd         *exec.Cmd
	env         []string
	log         *syncBuffer
	done        chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// nodeConfig is the config of every node; extra is appended under policy.
const nodeConfig = `listen:
  address: %q
  plain_http: true
upstreams:
  servers:
    - url: %q
  timeouts:
    long_poll_max: 600s
    drain: 5s
auth:
  lockout:
    failures: 3
    window: 15m
    backoff: 30m
admin:
  address: %q
state:
  path: %s
  url: %s
  password_file: %s
  offline_start: snapshot
log:
  level: info
  access_log: %s
policy:
  mode: enforce
  default_access: allow
  discovery_period: 0s
  quarantine:
    notice:
      from: "IT <it@corp.example.com>"
      subject: "Enrol your phone"
  rules:
    - name: quarantine-test-phones
      match: {device_type: QuarPhone}
      access: quarantine
%s`

// startNode runs a node; extraPolicy is appended to its policy section.
func (e *env) startNode(name, extraPolicy string, extraEnv ...string) *node {
	t := e.t
	t.Helper()
	n := &node{name: name, addr: freeAddr(t), admin: freeAddr(t), dir: t.TempDir(), log: &syncBuffer{}, done: make(chan struct{})}
	cfg := fmt.Sprintf(nodeConfig, n.addr, e.casURL, n.admin, filepath.Join(n.dir, "state.db"), e.db.URL(false), e.pwFile,
		filepath.Join(n.dir, "access.log"), extraPolicy)
	path := filepath.Join(n.dir, "easgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.env = append(os.Environ(), extraEnv...)
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("node %s log:\n%s", n.name, tail(n.log.String(), 6000))
		}
	})
	n.run(t)
	e.nodes = append(e.nodes, n)
	return n
}

// run starts the node's process (again) and waits until it listens.
func (n *node) run(t *testing.T) {
	t.Helper()
	n.done = make(chan struct{})
	n.cmd = exec.Command(binary, "serve", "--config", filepath.Join(n.dir, "easgate.yaml"))
	n.cmd.Stderr = n.log
	n.cmd.Stdout = io.Discard
	n.cmd.Env = n.env
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := n.done
	cmd := n.cmd
	go func() { _ = cmd.Wait(); close(done) }()
	name := n.name
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", n.addr); err == nil {
			c.Close()
			break
		}
		select {
		case <-n.done:
			t.Fatalf("node %s exited at start:\n%s", name, n.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s does not listen:\n%s", name, n.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

func (n *node) kill() {
	_ = n.cmd.Process.Kill() // SIGKILL: kill -9
	<-n.done
}

func (n *node) url() string { return "http://" + n.addr }

// metric reads one unlabelled series from the node's /metrics.
func (n *node) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.admin + "/metrics")
	if err != nil {
		t.Fatalf("node %s metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	t.Fatalf("node %s: no metric %s", n.name, name)
	return 0
}

func (n *node) readyz(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + n.admin + "/readyz")
	if err != nil {
		t.Fatalf("node %s readyz: %v", n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// requests counts the EAS requests in the node's access log.
func (n *node) requests() int {
	b, _ := os.ReadFile(filepath.Join(n.dir, "access.log"))
	return strings.Count(string(b), "\n")
}

// easgate runs a command of the easgate binary.
func easgate(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("easgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// easgateMay runs a command of the easgate binary and returns its output,
// whatever its exit status.
func easgateMay(args ...string) (string, error) {
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

// sql runs a query on the test's database and returns the first column of
// the first row.
func (e *env) sql(query string, args ...any) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.db.URL(true))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// balancer is a round-robin TCP load balancer: each connection goes to the
// next node that accepts it (a node that refuses is skipped, as a health
// checked balancer would).
type balancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func newBalancer(t *testing.T, nodes ...*node) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, conns: map[net.Conn]struct{}{}}
	for _, n := range nodes {
		b.backends = append(b.backends, n.addr)
	}
	go b.serve()
	t.Cleanup(b.close)
	return b
}

func (b *balancer) url() string { return "http://" + b.ln.Addr().String() }

func (b *balancer) track(c net.Conn, on bool) {
	b.mu.Lock()
	if on {
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
	b.mu.Unlock()
}

func (b *balancer) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			var up net.Conn
			for range b.backends {
				i := b.next.Add(1) % uint64(len(b.backends))
				if u, err := net.DialTimeout("tcp", b.backends[i], time.Second); err == nil {
					up = u
					break
				}
			}
			if up == nil {
				return
			}
			defer up.Close()
			b.track(c, true)
			b.track(up, true)
			defer b.track(c, false)
			defer b.track(up, false)
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func (b *balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
