// Package pgtest starts a private PostgreSQL cluster for tests: initdb into
// a temporary directory, listening only on 127.0.0.1 on a free port with
// its unix socket inside that directory, run as the postgres user when the
// test runs as root (PostgreSQL refuses to run as root), and removed by
// Close. It uses Debian's server binaries (/usr/lib/postgresql/*/bin).
//
// Tests call Need first: without the binaries it skips the test, except
// under CI=true, where it fails it (CI installs the postgresql package).
//
// It is test support: it imports pgx and the standard library, never the
// gateway.
package pgtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir returns the newest /usr/lib/postgresql/*/bin that has initdb,
// pg_ctl and postgres ("" when there is none).
func BinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		ok := true
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if st, err := os.Stat(filepath.Join(d, b)); err != nil || st.Mode()&0o111 == 0 {
				ok = false
			}
		}
		if ok {
			return d
		}
	}
	return ""
}

// Need skips t when the PostgreSQL server binaries are missing, and fails
// it instead under CI=true.
func Need(t testing.TB) {
	t.Helper()
	if BinDir() != "" {
		return
	}
	msg := "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (Debian package postgresql)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + ": CI must install them (.ci/run)")
	}
	t.Skip(msg + ": skipping")
}

// Cluster is one running private cluster.
type Cluster struct {
	Dir  string // the temporary directory (data, socket, log)
	Port int
	// CAFile is the PEM CA that signed the server's certificate (for
	// 127.0.0.1): the server accepts TLS, and sslmode=verify-full with
	// sslrootcert=CAFile verifies it.
	CAFile string
	bin    string
	cred   *syscall.Credential // the postgres user when running as root
	mu     sync.Mutex
	n      int
}

// Start initialises and starts a cluster. Close stops and removes it.
func Start() (*Cluster, error) {
	bin := BinDir()
	if bin == "" {
		return nil, errors.New("pgtest: PostgreSQL server binaries not found")
	}
	dir, err := os.MkdirTemp("", "easgate-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	for _, d := range []string{"data", "sock", "log"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if c.cred != nil {
			_ = os.Chown(p, int(c.cred.Uid), int(c.cred.Gid))
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "-E", "UTF8", "--no-locale",
		"--auth-local=trust", "--auth-host=scram-sha-256"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	if err := c.makeTLS(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := c.StartServer(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.Dir, "data") }

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.Dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// StartServer starts the (stopped) server and waits until it accepts
// connections.
func (c *Cluster) StartServer() error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c max_connections=200"+
		" -c ssl=on -c ssl_cert_file=%s -c ssl_key_file=%s",
		c.Port, filepath.Join(c.Dir, "sock"), filepath.Join(c.data(), "server.crt"), filepath.Join(c.data(), "server.key"))
	logf := filepath.Join(c.Dir, "log", "postgres.log")
	if out, err := c.run("pg_ctl", "-D", c.data(), "-l", logf, "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(logf)
		return fmt.Errorf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// StopServer stops the server (fast shutdown: sessions are cut), as an
// outage would.
func (c *Cluster) StopServer() error {
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Close stops the server and removes the directory.
func (c *Cluster) Close() {
	_, _ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "-t", "30", "stop")
	os.RemoveAll(c.Dir)
}

// Admin runs SQL as the superuser over the unix socket (database
// "postgres" when db is "").
func (c *Cluster) Admin(db, sql string, args ...any) error {
	if db == "" {
		db = "postgres"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s", filepath.Join(c.Dir, "sock"), c.Port, db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// Database is a database with its own owner role and password.
type Database struct {
	Name, User, Password string
	c                    *Cluster
}

// NewDatabase creates a role (with a password) and a database it owns.
func (c *Cluster) NewDatabase() (*Database, error) {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	d := &Database{Name: fmt.Sprintf("easgate_db%d", n), User: fmt.Sprintf("easgate_u%d", n), Password: fmt.Sprintf("pw%dSecr3tWord", n), c: c}
	if err := c.Admin("", fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, d.User, d.Password)); err != nil {
		return nil, err
	}
	if err := c.Admin("", fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, d.Name, d.User)); err != nil {
		return nil, err
	}
	return d, nil
}

// URL returns the database's URL on the loopback TCP listener, with the
// password in it when withPassword is set.
func (d *Database) URL(withPassword bool) string {
	u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("127.0.0.1:%d", d.c.Port), Path: "/" + d.Name, RawQuery: "sslmode=disable"}
	if withPassword {
		u.User = url.UserPassword(d.User, d.Password)
	} else {
		u.User = url.User(d.User)
	}
	return u.String()
}

// CPUTime returns the CPU time (user and system) the server has used so
// far: the postmaster and its backends, including those that have exited.
func (c *Cluster) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces).
		i := strings.LastIndexByte(string(st), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != pm && ppid != pm {
			continue
		}
		for _, k := range []int{11, 12} { // utime, stime
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
		if pid == pm {
			for _, k := range []int{13, 14} { // cutime, cstime: backends that exited
				v, _ := strconv.ParseInt(f[k], 10, 64)
				ticks += v
			}
		}
	}
	return time.Duration(ticks) * (time.Second / 100), nil // USER_HZ is 100 on Linux
}

// makeTLS generates a CA and a server certificate for 127.0.0.1 into the
// data directory (readable by the server only) and the CA into Dir.
func (c *Cluster) makeTLS() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pgtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	c.CAFile = filepath.Join(c.Dir, "ca.pem")
	files := []struct {
		path  string
		block *pem.Block
		mode  os.FileMode
		owned bool
	}{
		{c.CAFile, &pem.Block{Type: "CERTIFICATE", Bytes: caDER}, 0o644, false},
		{filepath.Join(c.data(), "server.crt"), &pem.Block{Type: "CERTIFICATE", Bytes: der}, 0o644, true},
		{filepath.Join(c.data(), "server.key"), &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}, 0o600, true},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(f.block), f.mode); err != nil {
			return err
		}
		if f.owned && c.cred != nil {
			if err := os.Chown(f.path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// TLSURL returns the database's URL with sslmode=verify-full against the
// cluster's CA (no password in it).
func (d *Database) TLSURL(caFile string) string {
	u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("127.0.0.1:%d", d.c.Port), Path: "/" + d.Name,
		RawQuery: "sslmode=verify-full&sslrootcert=" + url.QueryEscape(caFile), User: url.User(d.User)}
	return u.String()
}
