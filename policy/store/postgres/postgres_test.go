package postgres

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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/policy/store"
	"github.com/easgate/easgate/policy/store/postgres/pgtest"
)

var (
	clusterOnce sync.Once
	cluster     *pgtest.Cluster
	clusterErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

// newDB returns a fresh database on the package's private cluster.
func newDB(t *testing.T) *pgtest.Database {
	t.Helper()
	pgtest.Need(t)
	clusterOnce.Do(func() { cluster, clusterErr = pgtest.Start() })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	d, err := cluster.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoundTripAndKeyOrder(t *testing.T) {
	d := newDB(t)
	s := open(t, Config{URL: d.URL(true), Migrate: true})
	s.Start()
	puts := map[string][]byte{"bob\x00dev2": []byte(`{"b":2}`), "alice\x00dev1": []byte(`{"a":1}`), "zed\x00x": []byte("z")}
	if err := s.Update("devices", puts, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Update("devices", nil, []string{"zed\x00x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.ForEach("devices", func(k, v []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice\x00dev1", "bob\x00dev2"}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("keys %q, want %q (key order, delete applied)", keys, want)
	}
	v, ok, err := s.Get("devices", "bob\x00dev2")
	if err != nil || !ok || string(v) != `{"b":2}` {
		t.Fatalf("Get = %q %v %v", v, ok, err)
	}
	if _, ok, _ := s.Get("devices", "zed\x00x"); ok {
		t.Fatal("deleted record still readable")
	}
}

// A change on one node reaches the other through NOTIFY and the catch-up
// query; its own changes are not fed back to the writer.
func TestChangeFeedBetweenNodes(t *testing.T) {
	d := newDB(t)
	a := open(t, Config{URL: d.URL(true), Migrate: true})
	b := open(t, Config{URL: d.URL(true)})
	type ch struct{ key, value string }
	got := make(chan ch, 10)
	var echo sync.Mutex
	var echoed []string
	b.Subscribe("overrides", func(k string, v []byte) { got <- ch{k, string(v)} })
	a.Subscribe("overrides", func(k string, v []byte) { echo.Lock(); echoed = append(echoed, k); echo.Unlock() })
	a.Start()
	b.Start()
	start := time.Now()
	if err := a.Update("overrides", map[string][]byte{"u\x00d": []byte("block")}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.key != "u\x00d" || c.value != "block" {
			t.Fatalf("got %+v", c)
		}
		t.Logf("change reached the other node in %v", time.Since(start))
		if time.Since(start) > 2*time.Second {
			t.Fatalf("change took %v, want < 2 s", time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("change did not reach the other node")
	}
	if err := a.Update("overrides", nil, []string{"u\x00d"}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.value != "" {
			t.Fatalf("delete arrived as %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("delete did not reach the other node")
	}
	echo.Lock()
	defer echo.Unlock()
	if len(echoed) != 0 {
		t.Fatalf("writer got its own changes back: %q", echoed)
	}
}

// A node whose feed was not running when changes were made (a missed
// notification) catches up from its last version.
func TestCatchUpAfterMissedNotifications(t *testing.T) {
	d := newDB(t)
	a := open(t, Config{URL: d.URL(true), Migrate: true})
	a.Start()
	b := open(t, Config{URL: d.URL(true)}) // opened, feed not started: misses every NOTIFY
	for i := range 20 {
		if err := a.Update("quarantine", map[string][]byte{fmt.Sprint("k", i): []byte(fmt.Sprint(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	b.Subscribe("quarantine", func(k string, v []byte) { mu.Lock(); seen[k] = string(v); mu.Unlock() })
	b.Start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("caught up %d of 20 changes", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Writes queue while the database is down, are bounded, and arrive when
// it is back; the store says it is down meanwhile.
func TestWritesQueueWhileDatabaseDown(t *testing.T) {
	d := newDB(t)
	var mu sync.Mutex
	var events []string
	s := open(t, Config{URL: d.URL(true), Migrate: true, QueueLimit: 100, ConnectTimeout: time.Second,
		OnHealth: func(err error) {
			mu.Lock()
			events = append(events, fmt.Sprint(err == nil))
			mu.Unlock()
		}})
	s.Start()
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = cluster.StartServer()
		}
	}()
	for i := range 50 {
		if err := s.Update("devices", map[string][]byte{fmt.Sprint("dev", i): []byte("x")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	big := map[string][]byte{}
	for i := range 60 {
		big[fmt.Sprint("more", i)] = []byte("y")
	}
	if err := s.Update("devices", big, nil); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("a write beyond the queue limit: %v, want ErrQueueFull", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Up() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if s.Up() || s.Err() == nil {
		t.Fatal("store still says the database is up")
	}
	if strings.Contains(s.Err().Error(), d.Password) {
		t.Fatalf("error shows the password: %v", s.Err())
	}
	if n := s.Pending(); n != 50 {
		t.Fatalf("%d records queued, want 50", n)
	}
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.ForEach("devices", func(k, v []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 50 {
		t.Fatalf("%d records arrived, want 50", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(events) != "[false true]" {
		t.Fatalf("health events %v, want down then up", events)
	}
}

// Only one node holds a lease; the other takes it once it is released.
func TestLease(t *testing.T) {
	d := newDB(t)
	a := open(t, Config{URL: d.URL(true), Migrate: true})
	b := open(t, Config{URL: d.URL(true)})
	ctx := t.Context()
	if ok, err := a.TryLease(ctx, "graph", 10*time.Second); err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	if ok, err := b.TryLease(ctx, "graph", 10*time.Second); err != nil || ok {
		t.Fatalf("b took a held lease: %v %v", ok, err)
	}
	if ok, err := a.TryLease(ctx, "graph", 10*time.Second); err != nil || !ok {
		t.Fatalf("a could not renew: %v %v", ok, err)
	}
	if err := a.ReleaseLease(ctx, "graph"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLease(ctx, "graph", 200*time.Millisecond); err != nil || !ok {
		t.Fatalf("b after release: %v %v", ok, err)
	}
	time.Sleep(300 * time.Millisecond)
	if ok, err := a.TryLease(ctx, "graph", 10*time.Second); err != nil || !ok {
		t.Fatalf("a after b's lease expired: %v %v", ok, err)
	}
}

// A node started while the database is down serves from its snapshot
// (Offline), and catches up when the database comes back.
func TestOfflineStartFromSnapshot(t *testing.T) {
	d := newDB(t)
	snapPath := filepath.Join(t.TempDir(), "snapshot.db")
	snap, err := store.Open(snapPath, false)
	if err != nil {
		t.Fatal(err)
	}
	a := open(t, Config{URL: d.URL(true), Migrate: true, Snapshot: snap})
	a.Start()
	if err := a.Update("overrides", map[string][]byte{"u\x00d1": []byte("allow")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	cfg := Config{URL: d.URL(true), Snapshot: snap, ConnectTimeout: time.Second}
	if _, err := Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("without Offline a down database must refuse the start: %v", err)
	}
	cfg.Offline = true
	b, err := Open(t.Context(), cfg)
	if err != nil {
		_ = cluster.StartServer()
		t.Fatal(err)
	}
	defer b.Close()
	v, ok, err := b.Get("overrides", "u\x00d1")
	if err != nil || !ok || string(v) != "allow" {
		_ = cluster.StartServer()
		t.Fatalf("offline read from the snapshot: %q %v %v", v, ok, err)
	}
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	b.Subscribe("overrides", func(k string, v []byte) { got <- k })
	b.Start()
	c := open(t, Config{URL: d.URL(true)})
	c.Start()
	if err := c.Update("overrides", map[string][]byte{"u\x00d2": []byte("block")}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for {
		select {
		case k := <-got:
			if k == "u\x00d2" {
				return
			}
			if k != "u\x00d1" {
				t.Fatalf("caught up %q", k)
			}
		case <-deadline:
			t.Fatal("the node started offline did not catch up")
		}
	}
}

// Bad input gets a clear error, and no error shows the password.
func TestBadInput(t *testing.T) {
	d := newDB(t)
	old := newDB(t)
	if _, _, err := Migrate(t.Context(), Config{URL: old.URL(true)}, 1); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("wrong-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodFile := filepath.Join(t.TempDir(), "good")
	if err := os.WriteFile(goodFile, []byte(d.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := strings.Replace(d.URL(true), "/"+d.Name, "/nosuchdb", 1)
	for _, tc := range []struct {
		name   string
		cfg    Config
		want   string
		secret string
	}{
		{"bad URL", Config{URL: "mysql://u:pw-in-url@127.0.0.1/x"}, "not a postgres:// URL", "pw-in-url"},
		{"unparsable URL", Config{URL: "postgres://u:pw-in-url@127.0.0.1:notaport/x"}, "state.url", "pw-in-url"},
		{"wrong credentials", Config{URL: d.URL(false), PasswordFile: pwFile}, "refused the credentials", "wrong-Passw0rd"},
		{"wrong credentials in URL", Config{URL: strings.Replace(d.URL(true), d.Password, "Bad-Secret-9", 1)}, "refused the credentials", "Bad-Secret-9"},
		{"missing database", Config{URL: missing}, "database does not exist", d.Password},
		{"nothing listening", Config{URL: "postgres://u:Hidden-Pw@127.0.0.1:1/x?sslmode=disable", ConnectTimeout: time.Second}, "cannot connect", "Hidden-Pw"},
		{"older schema", Config{URL: old.URL(false), PasswordFile: filepath.Join(t.TempDir(), "none")}, "state.password_file", ""},
		{"missing schema", Config{URL: d.URL(true)}, "schema version 0", d.Password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error shows the secret: %v", err)
			}
			t.Log(err)
		})
	}
	_, err := Open(t.Context(), Config{URL: old.URL(true)})
	if !errors.Is(err, ErrOldSchema) || !strings.Contains(err.Error(), "easgate state migrate") || strings.Contains(err.Error(), old.Password) {
		t.Fatalf("older schema: %v", err)
	}
	s, err := Open(t.Context(), Config{URL: old.URL(false), PasswordFile: filepath.Join(filepath.Dir(goodFile), "good"), Migrate: true})
	if err == nil {
		s.Close()
		t.Fatal("the other database's password opened this one")
	}
	t.Setenv("PGPASSWORD", old.Password)
	s, err = Open(t.Context(), Config{URL: old.URL(false), Migrate: true})
	if err != nil {
		t.Fatalf("PGPASSWORD and migrate at start: %v", err)
	}
	s.Close()
}

// TLS to the database: sslmode=verify-full against the right CA connects;
// against another CA it fails with a message that names TLS.
func TestTLSToTheDatabase(t *testing.T) {
	d := newDB(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(d.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{URL: d.TLSURL(cluster.CAFile), PasswordFile: pw, Migrate: true})
	var ssl bool
	if err := s.pool.QueryRow(t.Context(), `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil || !ssl {
		t.Fatalf("the connection is not encrypted: %v %v", ssl, err)
	}
	// A CA that did not sign the server's certificate.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "another CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), Config{URL: d.TLSURL(otherCA), PasswordFile: pw})
	if err == nil || !strings.Contains(err.Error(), "TLS to the server failed") || strings.Contains(err.Error(), d.Password) {
		t.Fatalf("a server certificate from another CA: %v", err)
	}
	t.Log(err)
}
