package admin

import (
	"errors"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/config"
)

// fakeGateway is an Access built from a config, with the wakes recorded.
type fakeGateway struct {
	acc   *access.Access
	mu    sync.Mutex
	woken []string
}

func (g *fakeGateway) Access() *access.Access { return g.acc }
func (g *fakeGateway) Tokens() []Token        { return nil }
func (g *fakeGateway) Wake(user, device string) {
	g.mu.Lock()
	g.woken = append(g.woken, user+" "+device)
	g.mu.Unlock()
}
func (g *fakeGateway) Quarantine(string, string) (QuarantineInfo, bool) {
	return QuarantineInfo{}, false
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	cfg := config.Default()
	cfg.Policy.DefaultAccess = config.AccessQuarantine
	cfg.Auth.Domains = []string{"corp.example.com"}
	cfg.State.Path = filepath.Join(t.TempDir(), "state.db")
	acc, err := access.Build(cfg, zerolog.Nop(), access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = acc.Close() })
	return &fakeGateway{acc: acc}
}

// seen records a device with its DeviceInformation and decision.
func seen(g *fakeGateway, user, dev string, info eas.DeviceInfo, a policy.Action) {
	d := g.acc.Devices
	now := time.Now()
	d.Touch([]byte(user), []byte(dev), []byte("iPhone"), []byte("iOS/17.5.1 (21F90) dataaccessd/1.0"), now)
	d.Update([]byte(user), []byte(dev), now, func(r *policy.DeviceRecord) { r.Info = info })
	dec := policy.Decision{Action: a, Enforced: true}
	c := eas.Identify([]byte("iOS/17.5.1 (21F90) dataaccessd/1.0"), []byte("iPhone"), &info)
	d.Observe([]byte(user), []byte(dev), &dec, &c, policy.Observation{Command: eas.CmdSync, Version: eas.V161, Addr: netip.MustParseAddr("::1"), Now: now})
}

// TestChurnAllowLike: a wiped phone's new DeviceId is shown as the
// successor of its allowed predecessor, and allow --like carries the
// approval over with an audit entry naming the old device.
func TestChurnAllowLike(t *testing.T) {
	g := newFakeGateway(t)
	api := New(g, zerolog.Nop())
	const u = "jdoe@corp.example.com"
	phone := eas.DeviceInfo{Model: "iPhone15C2", IMEI: "356789101234567", FriendlyName: "Jo's iPhone", OS: "iOS 17.5.1 21F90"}
	seen(g, u, "OLDID", phone, policy.Allow)
	seen(g, u, "NEWID", phone, policy.Quarantine)
	seen(g, u, "OTHER", eas.DeviceInfo{Model: "SM-G991B", OS: "Android 14"}, policy.Quarantine)

	page, _ := g.acc.Devices.List(&policy.DeviceFilter{}, "device_id", 0, 10)
	views := api.views(g.acc, page.Devices)
	succ := map[string]string{}
	for _, v := range views {
		succ[v.DeviceID] = v.SuccessorOf
	}
	if succ["NEWID"] != "OLDID" || succ["OTHER"] != "" || succ["OLDID"] != "" {
		t.Fatalf("successors %v", succ)
	}

	op := Principal{Name: "helpdesk", Role: RoleOperate}
	if _, err := api.Apply(op, Request{Action: ActAllow, User: `CORP\jdoe`, DeviceID: "newid", Like: "OTHER"}); err == nil {
		t.Fatal("allow --like a device that is not allowed succeeded")
	}
	e, err := api.Apply(op, Request{Action: ActAllow, User: `CORP\jdoe`, DeviceID: "newid", Like: "oldid", Note: "wiped"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Like != "OLDID" || e.DeviceID != "NEWID" || e.User != u || e.After != "allowed (override allow)" || e.Before != "quarantined" {
		t.Fatalf("audit entry %+v", e)
	}
	if o, ok := g.acc.Overrides.Get(u, "NEWID"); !ok || o.Like != "OLDID" || o.By != "helpdesk" {
		t.Fatalf("override %+v", o)
	}
	if len(g.woken) != 1 || g.woken[0] != u+" NEWID" {
		t.Fatalf("wakes %v", g.woken)
	}
	// A read token cannot act, whatever the path.
	var ae *apiError
	if _, err := api.Apply(Principal{Name: "grafana", Role: RoleRead}, Request{Action: ActBlock, User: u, DeviceID: "NEWID"}); !errors.As(err, &ae) || ae.status != 403 {
		t.Fatalf("read token acted: %v", err)
	}
	// forget removes the record and the override, and is audited first.
	if e, err = api.Apply(op, Request{Action: ActForget, User: u, DeviceID: "NEWID"}); err != nil || e.After != "forgotten" {
		t.Fatalf("forget: %+v %v", e, err)
	}
	if _, ok := g.acc.Devices.Get([]byte(u), []byte("NEWID")); ok || g.acc.Overrides.Len() != 0 {
		t.Fatal("forget left the record or the override")
	}
	entries, _ := policy.ReadAudit(g.acc.Store, g.acc.Audit, policy.AuditFilter{User: u}, 0)
	if len(entries) != 2 {
		t.Fatalf("audit trail %+v", entries)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"30d": now.Add(-30 * 24 * time.Hour), "90m": now.Add(-90 * time.Minute),
		"2026-12-01T00:00:00Z": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "": {},
	} {
		got, err := ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-3d", "-5m", "1e9d", "d"} {
		if _, err := ParseSince(in, now); err == nil {
			t.Errorf("ParseSince(%q) accepted", in)
		}
	}
	if n, err := parsePageToken(pageToken(250)); err != nil || n != 250 {
		t.Fatalf("page token round trip: %d %v", n, err)
	}
}
