package sources

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/policy"
)

// fakeGraph follows Graph's documented shapes: an AAD v2 token endpoint and
// deviceManagement/managedDevices with $select, $filter and @odata.nextLink.
type fakeGraph struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	devices  []graphManagedDevice
	pageSize int
	tokens   int
	valid    map[string]bool
	throttle int // answer 429 to this many page requests
	expireAt int // invalidate every token after this many page requests (0 = never)
	filters  []string
	pages    int
	cert     *x509.Certificate // when set, require a client assertion signed by its key
}

func newFakeGraph(t *testing.T) *fakeGraph {
	g := &fakeGraph{t: t, pageSize: 2, valid: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tenant-1/oauth2/v2.0/token", g.token)
	mux.HandleFunc("GET /v1.0/deviceManagement/managedDevices", g.managedDevices)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGraph) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("client_id") != "app-1" {
		http.Error(w, `{"error":"invalid_request"}`, 400)
		return
	}
	if g.cert != nil {
		if err := verifyAssertion(r.Form.Get("client_assertion"), g.cert); err != nil {
			g.t.Errorf("client assertion: %v", err)
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
	} else if r.Form.Get("client_secret") != "shh" {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	g.mu.Lock()
	g.tokens++
	tok := fmt.Sprintf("tok-%d", g.tokens)
	g.valid[tok] = true
	g.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 3600, "token_type": "Bearer"})
}

func (g *fakeGraph) managedDevices(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !g.valid[tok] {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}}`))
		return
	}
	g.pages++
	if g.expireAt > 0 && g.pages == g.expireAt {
		g.valid = map[string]bool{} // every token expires now
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if g.throttle > 0 {
		g.throttle--
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if r.URL.Query().Get("$select") == "" {
		g.t.Error("no $select")
	}
	devs := g.devices
	if f := r.URL.Query().Get("$filter"); f != "" {
		g.filters = append(g.filters, f)
		since, err := time.Parse(time.RFC3339, strings.TrimPrefix(f, "lastSyncDateTime ge "))
		if err != nil {
			http.Error(w, "bad filter", 400)
			return
		}
		var out []graphManagedDevice
		for _, d := range devs {
			if ts, _ := time.Parse(time.RFC3339, d.LastSyncDateTime); !ts.Before(since) {
				out = append(out, d)
			}
		}
		devs = out
	}
	skip := 0
	fmt.Sscan(r.URL.Query().Get("$skiptoken"), &skip)
	end := min(skip+g.pageSize, len(devs))
	page := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices", "value": devs[skip:end]}
	if end < len(devs) {
		q := r.URL.Query()
		q.Set("$skiptoken", fmt.Sprint(end))
		page["@odata.nextLink"] = g.srv.URL + r.URL.Path + "?" + q.Encode()
	}
	json.NewEncoder(w).Encode(page)
}

func verifyAssertion(jwt string, cert *x509.Certificate) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	return rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig)
}

func dev(upn, eas, state, ts string) graphManagedDevice {
	return graphManagedDevice{ID: eas + "-id", UserPrincipalName: upn, EasDeviceID: eas, EasActivated: true, ComplianceState: state,
		ExchangeAccessState: "allowed", OperatingSystem: "iOS", OSVersion: "17.5.1", LastSyncDateTime: ts}
}

func TestGraphSyncPagingThrottlingAndTokenRenewal(t *testing.T) {
	g := newFakeGraph(t)
	old := "2026-11-01T00:00:00Z"
	g.devices = []graphManagedDevice{
		dev("alice@corp.example.com", "ApplDMPL69PZF18P", "compliant", old),
		dev("bob@corp.example.com", "SEC17CD1A3E9E3F2", "noncompliant", old),
		dev("carol@corp.example.com", "androidc195792594", "inGracePeriod", old),
		dev("dave@corp.example.com", "BF36923991ADFBA9", "unknown", old),
		dev("erin@corp.example.com", "", "compliant", old), // no EAS id: ignored
	}
	g.throttle = 1
	g.expireAt = 2
	src, err := NewGraph(GraphConfig{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "shh", AuthorityURL: g.srv.URL, GraphURL: g.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := src.Lookup(ctx, policy.Query{User: "alice@corp.example.com", DeviceID: "ApplDMPL69PZF18P"}); !errors.Is(err, policy.ErrUnavailable) {
		t.Fatalf("before the first sync: %v", err)
	}
	if err := src.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	if g.tokens != 2 {
		t.Errorf("tokens issued = %d, want 2 (the first expired mid-sync)", g.tokens)
	}
	if g.pages < 4 {
		t.Errorf("pages fetched = %d: paging, the 429 and the 401 were not all exercised", g.pages)
	}
	want := map[string]policy.State{
		"ApplDMPL69PZF18P": policy.StateCompliant, "SEC17CD1A3E9E3F2": policy.StateNoncompliant,
		"androidc195792594": policy.StateGrace, "BF36923991ADFBA9": policy.StateUnknown, "NOPE": policy.StateUnknown,
	}
	users := map[string]string{"ApplDMPL69PZF18P": `CORP\alice`, "SEC17CD1A3E9E3F2": "bob@corp.example.com",
		"androidc195792594": "carol", "BF36923991ADFBA9": "dave@corp.example.com", "NOPE": "x@corp.example.com"}
	for id, st := range want {
		v, err := src.Lookup(ctx, policy.Query{User: users[id], DeviceID: strings.ToLower(id)})
		if err != nil || v.State != st || v.Source != "graph" {
			t.Errorf("%s: %+v %v, want %s", id, v, err, st)
		}
	}
	// Quick sync: only changed devices are asked for, and merged in.
	g.devices[1] = dev("bob@corp.example.com", "SEC17CD1A3E9E3F2", "compliant", time.Now().UTC().Format(time.RFC3339))
	if err := src.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(g.filters) != 1 || !strings.HasPrefix(g.filters[0], "lastSyncDateTime ge ") {
		t.Fatalf("quick sync filters %q", g.filters)
	}
	v, _ := src.Lookup(ctx, policy.Query{User: "bob@corp.example.com", DeviceID: "SEC17CD1A3E9E3F2"})
	if v.State != policy.StateCompliant {
		t.Fatalf("after quick sync bob is %s", v.State)
	}
	if v, _ := src.Lookup(ctx, policy.Query{User: "alice@corp.example.com", DeviceID: "ApplDMPL69PZF18P"}); v.State != policy.StateCompliant {
		t.Fatalf("quick sync lost alice: %s", v.State)
	}
}

func TestGraphCertificateCredential(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "easgate-graph"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	g := newFakeGraph(t)
	g.cert = cert
	g.devices = []graphManagedDevice{dev("alice@corp.example.com", "D1", "compliant", "2026-11-01T00:00:00Z")}
	src, err := NewGraph(GraphConfig{TenantID: "tenant-1", ClientID: "app-1", Certificate: cert, Key: key, AuthorityURL: g.srv.URL, GraphURL: g.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if v, _ := src.Lookup(context.Background(), policy.Query{User: "alice@corp.example.com", DeviceID: "D1"}); v.State != policy.StateCompliant {
		t.Fatalf("state %s", v.State)
	}
}

func TestGraphWrongSecretIsReportedWithoutTheSecret(t *testing.T) {
	g := newFakeGraph(t)
	src, _ := NewGraph(GraphConfig{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "not-the-secret", AuthorityURL: g.srv.URL, GraphURL: g.srv.URL})
	err := src.Sync(context.Background(), true)
	if err == nil || strings.Contains(err.Error(), "not-the-secret") || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("error %v", err)
	}
}

func TestGraphStartAndClose(t *testing.T) {
	g := newFakeGraph(t)
	g.devices = []graphManagedDevice{dev("alice@corp.example.com", "D1", "compliant", "2026-11-01T00:00:00Z")}
	synced := make(chan error, 8)
	src, _ := NewGraph(GraphConfig{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "shh", AuthorityURL: g.srv.URL, GraphURL: g.srv.URL,
		QuickSync: 20 * time.Millisecond, OnSync: func(full bool, n int, err error) { synced <- err }})
	src.Start()
	for i := 0; i < 2; i++ {
		select {
		case err := <-synced:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no sync")
		}
	}
	src.Close()
}

// TestGraphFullSyncDropIsHeldBack: a full sync that returns far fewer
// devices keeps the table in force until `easgate compliance accept` names
// the held pull; quick syncs still merge into the table in force.
func TestGraphFullSyncDropIsHeldBack(t *testing.T) {
	g := newFakeGraph(t)
	g.pageSize = 4
	old := "2026-11-01T00:00:00Z"
	for i := 0; i < 10; i++ {
		g.devices = append(g.devices, dev(fmt.Sprintf("user%d@corp.example.com", i), fmt.Sprintf("ApplDEV00000%d", i), "compliant", old))
	}
	dir := t.TempDir()
	acc, st := GuardPaths("graph", "", filepath.Join(dir, "state.db"), "")
	ev := &events{}
	src, err := NewGraph(GraphConfig{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "shh", AuthorityURL: g.srv.URL, GraphURL: g.srv.URL,
		Guard: Guard{AcceptPath: acc, StatusPath: st, OnEvent: ev.add}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := src.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	before := verdicts(t, src)

	// Intune answers with three devices only (a filter or paging fault).
	all := g.devices
	g.devices = all[:3]
	err = src.Sync(ctx, true)
	var h *HeldBack
	if !errors.As(err, &h) || h.Reason != HoldDrop || h.Old != 10 || h.New != 3 || h.DropPercent != 70 || h.Source != "graph" {
		t.Fatalf("full sync of 3 after 10: %v", err)
	}
	if after := verdicts(t, src); !sameStates(before, after) {
		t.Fatalf("verdicts changed under a held-back sync: %v -> %v", before, after)
	}
	if s, err := ReadStatus(st); err != nil || s.HeldBack == nil || s.HeldBack.SHA256 != h.SHA256 || s.Entries != 10 {
		t.Fatalf("status %+v %v", s, err)
	}
	// The same reduced pull again is not reported twice, nor accepted.
	if err := src.Sync(ctx, true); !errors.As(err, &h) {
		t.Fatalf("second reduced pull: %v", err)
	}
	if n := len(ev.all()); n != 1 {
		t.Fatalf("%d events, want the hold reported once", n)
	}
	// A quick sync still merges changes into the table in force.
	g.devices = append([]graphManagedDevice(nil), all...)
	g.devices[5] = dev("user5@corp.example.com", "ApplDEV000005", "noncompliant", time.Now().UTC().Format(time.RFC3339))
	if err := src.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if v := verdicts(t, src); v[5] != policy.StateNoncompliant || v[4] != policy.StateCompliant {
		t.Fatalf("quick sync while held back: %v", v)
	}
	if src.CheckAccept() {
		t.Fatal("accepted without a marker")
	}
	if err := WriteAccept(acc, h.SHA256); err != nil {
		t.Fatal(err)
	}
	if !src.CheckAccept() || src.HeldBack() != nil {
		t.Fatal("the accept marker for the held pull was not applied")
	}
	v := verdicts(t, src)
	if v[0] != policy.StateCompliant || v[5] != policy.StateUnknown || v[9] != policy.StateUnknown {
		t.Fatalf("after accepting the 3-device pull: %v", v)
	}
	if evs := ev.all(); len(evs) != 2 || evs[1].EndedBy != EndedByAcceptFile || evs[1].Entries != 3 {
		t.Fatalf("events %+v", evs)
	}
	if _, err := os.Stat(acc); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker not removed: %v", err)
	}
	// The next quick sync asks for changes since the accepted pull.
	g.filters = nil
	if err := src.Sync(ctx, false); err != nil || len(g.filters) != 1 {
		t.Fatalf("quick sync after accept: %v %q", err, g.filters)
	}
}

// TestGraphEmptyFirstSyncIsHeldBack: with no table yet, an empty pull
// leaves lookups unavailable (on_unavailable) rather than "not enrolled".
func TestGraphEmptyFirstSyncIsHeldBack(t *testing.T) {
	g := newFakeGraph(t)
	src, _ := NewGraph(GraphConfig{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "shh", AuthorityURL: g.srv.URL, GraphURL: g.srv.URL})
	err := src.Sync(context.Background(), true)
	var h *HeldBack
	if !errors.As(err, &h) || h.Reason != HoldEmpty || !h.Initial || !strings.Contains(err.Error(), "on_unavailable") {
		t.Fatalf("empty first pull: %v", err)
	}
	if _, err := src.Lookup(context.Background(), policy.Query{User: "u@x.example", DeviceID: "D1"}); !errors.Is(err, policy.ErrUnavailable) {
		t.Fatalf("lookup after an empty first pull: %v", err)
	}
}
