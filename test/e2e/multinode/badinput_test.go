package multinode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
)

// minimalConfig is a node config with the given state section.
func minimalConfig(t *testing.T, casURL, state string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen:
  address: %q
  plain_http: true
upstreams:
  servers:
    - url: %q
admin:
  address: ""
log:
  access_log: %s
state:
%s`, freeAddr(t), casURL, filepath.Join(dir, "access.log"), state)
	path := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveFails runs easgate serve and returns its output; it must exit with
// an error within 30 s.
func serveFails(t *testing.T, cfg string) string {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--config", cfg)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("easgate serve did not stop on a bad state database:\n%s", out)
	}
	if err == nil {
		t.Fatalf("easgate serve succeeded:\n%s", out)
	}
	return string(out)
}

// A bad URL, wrong credentials, a missing database, an older schema and a
// database that is down each stop check-config or the start with a clear
// message, and no message shows the password.
func TestBadStateDatabase(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{})
	wrong := filepath.Join(t.TempDir(), "wrong.password")
	if err := os.WriteFile(wrong, []byte("Not-The-Password-77\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := func(url, pw, extra string) string {
		return fmt.Sprintf("  url: %s\n  password_file: %s\n%s", url, pw, extra)
	}
	t.Run("bad URL", func(t *testing.T) {
		cfg := minimalConfig(t, e.casURL, "  url: mysql://easgate:Url-Secret-55@127.0.0.1/easgate\n")
		out, err := exec.Command(binary, "check-config", cfg).CombinedOutput()
		if err == nil || !strings.Contains(string(out), `state.url: scheme "mysql" is not postgres`) || strings.Contains(string(out), "Url-Secret-55") {
			t.Fatalf("check-config: %v\n%s", err, out)
		}
		t.Logf("check-config: %s", strings.TrimSpace(string(out)))
		cfg = minimalConfig(t, e.casURL, "  url: postgres://easgate:Url-Secret-55@127.0.0.1/easgate\n")
		out, err = exec.Command(binary, "check-config", cfg).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "state.url: the URL contains a password") || strings.Contains(string(out), "Url-Secret-55") {
			t.Fatalf("check-config: %v\n%s", err, out)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		out := serveFails(t, minimalConfig(t, e.casURL, state(e.db.URL(false), wrong, "")))
		if !strings.Contains(out, "the server refused the credentials") || strings.Contains(out, "Not-The-Password-77") {
			t.Fatalf("serve:\n%s", out)
		}
	})
	t.Run("missing database", func(t *testing.T) {
		url := strings.Replace(e.db.URL(false), "/"+e.db.Name+"?", "/nosuchdb?", 1)
		out := serveFails(t, minimalConfig(t, e.casURL, state(url, e.pwFile, "")))
		if !strings.Contains(out, "the database does not exist") || strings.Contains(out, e.db.Password) {
			t.Fatalf("serve:\n%s", out)
		}
	})
	t.Run("older schema", func(t *testing.T) {
		old, err := cluster.NewDatabase()
		if err != nil {
			t.Fatal(err)
		}
		pw := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pw, []byte(old.Password), 0o600); err != nil {
			t.Fatal(err)
		}
		// Schema version 1 only, as an older easgate left it.
		if err := cluster.Admin(old.Name, `SET ROLE `+old.User+`;
			CREATE TABLE easgate_schema (version integer NOT NULL); INSERT INTO easgate_schema VALUES (1);
			CREATE SEQUENCE easgate_version;
			CREATE TABLE easgate_records (bucket text NOT NULL, key bytea NOT NULL, value bytea, version bigint NOT NULL,
				origin text NOT NULL, modified timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (bucket, key));`); err != nil {
			t.Fatal(err)
		}
		cfg := minimalConfig(t, e.casURL, state(old.URL(false), pw, "  schema: check\n"))
		out := serveFails(t, cfg)
		if !strings.Contains(out, "it has schema version 1, this easgate needs 2: run `easgate state migrate`") || strings.Contains(out, old.Password) {
			t.Fatalf("serve:\n%s", out)
		}
		if out := easgate(t, "state", "migrate", "--config", cfg); !strings.Contains(out, "schema migrated from version 1 to 2") {
			t.Fatalf("state migrate: %s", out)
		}
		if out := easgate(t, "state", "migrate", "--config", cfg); !strings.Contains(out, "schema version 2, nothing to do") {
			t.Fatalf("state migrate again: %s", out)
		}
	})
	t.Run("database down, offline_start refuse", func(t *testing.T) {
		url := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&connect_timeout=2", e.db.User, freeAddr(t), e.db.Name)
		out := serveFails(t, minimalConfig(t, e.casURL, state(url, e.pwFile, "")))
		if !strings.Contains(out, "state database: cannot connect") || !strings.Contains(out, "state.offline_start: snapshot") || strings.Contains(out, e.db.Password) {
			t.Fatalf("serve:\n%s", out)
		}
	})
}

// `easgate state copy` moves a single node's state file into the database;
// the nodes on the database then know its devices and overrides, and
// `easgate devices list` reads the database when no gateway answers.
func TestStateCopyFromSingleNode(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{})
	single := filepath.Join(t.TempDir(), "single.db")
	// A single node (state.path only) learns a device and an override.
	dir := t.TempDir()
	admin := freeAddr(t)
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "single.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen:
  address: %q
  plain_http: true
upstreams:
  servers:
    - url: %q
admin:
  address: %q
log:
  access_log: %s
state:
  path: %s
`, addr, e.casURL, admin, filepath.Join(dir, "access.log"), single)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--config", cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{name: "single", addr: addr, admin: admin, cmd: cmd, done: make(chan struct{}), log: &syncBuffer{}}
	go func() { _ = cmd.Wait(); close(n.done) }()
	t.Cleanup(n.stop)
	waitListen(t, addr)
	p := newPhone("erin@corp.example.com", "ApplERIN0000001", "", n)
	if err := p.Setup(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a device flush
	easgate(t, "devices", "block", "--admin", "http://"+admin, "--user", "erin@corp.example.com", "--device-id", "ApplERIN0000001", "--note", "lost")
	n.stop()

	out := easgate(t, "state", "copy", "--from", single, "--to", e.db.URL(false), "--password-file", e.pwFile)
	t.Logf("state copy:\n%s", out)
	if !strings.Contains(out, "devices      1 records") || !strings.Contains(out, "overrides    1 records") {
		t.Fatalf("state copy: %s", out)
	}
	if out, err := easgateMay("state", "copy", "--from", single, "--to", e.db.URL(false), "--password-file", e.pwFile); err == nil || !strings.Contains(out, "already holds") {
		t.Fatalf("a second copy into the same database: %v\n%s", err, out)
	}
	// A node on the database blocks the device.
	a := e.startNode("A", "")
	_, _, err := newPhone("erin@corp.example.com", "ApplERIN0000001", "", a).Sync("1")
	if bench.ErrorKind(err) != bench.KindBlocked {
		t.Fatalf("the copied override on a node of the database: %v", err)
	}
	a.stop()
	// With no gateway answering, explain and devices list read the database.
	expl := easgate(t, "explain", "--config", filepath.Join(a.dir, "easgate.yaml"), "--user", "erin@corp.example.com", "--device-id", "ApplERIN0000001")
	if !strings.Contains(strings.ToLower(expl), "block") {
		t.Fatalf("explain on the database does not show the block:\n%s", expl)
	}
	list := easgate(t, "devices", "list", "--config", filepath.Join(a.dir, "easgate.yaml"), "--all")
	if !strings.Contains(list, "ApplERIN0000001") {
		t.Fatalf("devices list on the database:\n%s", list)
	}
	report := easgate(t, "report", "--config", filepath.Join(a.dir, "easgate.yaml"), "--json")
	if !strings.Contains(report, "reading postgres://") || !strings.Contains(report, `"blocked": 1`) {
		t.Fatalf("report on the database:\n%s", report)
	}
}

func waitListen(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := netDial(addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
