package policy

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy/store"
)

// TestOverridesRankFirst: an admin override decides before the per-user
// lists, discovery, rules and compliance; allow exempts from compliance.
func TestOverridesRankFirst(t *testing.T) {
	src := &fakeSource{states: map[string]State{}}
	cache, err := NewCache(src, CacheConfig{LookupTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ov := NewOverrides(nil)
	cfg := baseConfig()
	cfg.Compliance = ComplianceConfig{RequireFor: []string{"all"}, OnUnavailable: Quarantine}
	cfg.Users = map[string]UserLists{"bob@corp.example.com": {BlockedDevices: []string{"LISTED1"}}}
	cfg.Overrides = ov
	e, err := NewEngine(cfg, cache)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := subject("bob@corp.example.com", "listed1", "Android", uaGmail, "SM-M215F", "Android 10")
	if d := e.Decide(ctx, s); d.Action != Block || !d.HasReason(ReasonIndividualBlock) {
		t.Fatalf("before: %v %v", d.Action, d.Reasons())
	}
	if err := ov.Set(Override{User: "bob@corp.example.com", DeviceID: "LISTED1", Action: "allow", By: "t"}); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(ctx, s); d.Action != Allow || !d.HasReason(ReasonAdminAllow) || src.calls.Load() != 0 {
		t.Fatalf("allow override: %v %v (source calls %d)", d.Action, d.Reasons(), src.calls.Load())
	}
	// Any spelling of the user, any case of the device id.
	s2 := subject(`CORP\Bob`, "LiStEd1", "Android", uaGmail, "SM-M215F", "Android 10")
	if d := e.Decide(ctx, s2); !d.HasReason(ReasonAdminAllow) {
		t.Fatalf("other spelling: %v", d.Reasons())
	}
	_ = ov.Set(Override{User: "bob@corp.example.com", DeviceID: "listed1", Action: "quarantine", By: "t", Note: "why"})
	d, steps := e.Explain(ctx, s)
	if d.Action != Quarantine || !d.HasReason(ReasonAdminQuarantine) || steps[0].Check != "admin override" || !steps[0].Matched ||
		!strings.Contains(steps[0].Detail, "why") {
		t.Fatalf("quarantine override: %v %v %+v", d.Action, d.Reasons(), steps)
	}
	if err := ov.Delete("bob@corp.example.com", "LISTED1"); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(ctx, s); d.Action != Block {
		t.Fatalf("after default: %v", d.Action)
	}
	if err := ov.Set(Override{User: "bob@corp.example.com", DeviceID: "x", Action: "maybe"}); err == nil {
		t.Fatal("a bad action was stored")
	}
}

// TestDecideZeroAllocsWithOverrides: the override lookup on the hot path
// allocates nothing, whether or not the device has an override.
func TestDecideZeroAllocsWithOverrides(t *testing.T) {
	ov := NewOverrides(nil)
	for i := range 1000 {
		_ = ov.Set(Override{User: "bob@corp.example.com", DeviceID: fmt.Sprintf("DEV%d", i), Action: "block"})
	}
	cfg := baseConfig()
	cfg.Overrides = ov
	e, err := NewEngine(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	hit := subject("bob@corp.example.com", "dev7", "Android", uaGmail, "SM-M215F", "Android 10")
	miss := subject("bob@corp.example.com", "OTHER", "Android", uaGmail, "SM-M215F", "Android 10")
	hit.Now, miss.Now = time.Time{}, time.Time{}
	ctx := context.Background()
	if d := e.Decide(ctx, hit); d.Action != Block {
		t.Fatalf("hit: %v", d.Action)
	}
	if n := testing.AllocsPerRun(200, func() { e.Decide(ctx, hit); e.Decide(ctx, miss) }); n != 0 {
		t.Fatalf("Decide with overrides allocates %.1f times", n)
	}
}

func TestOverridesAndAuditPersist(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	ov := NewOverrides(st)
	if err := ov.Set(Override{User: "a@x", DeviceID: "D1", Action: "block", By: "ops", Note: "lost"}); err != nil {
		t.Fatal(err)
	}
	a, err := NewAudit(st)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := a.Append(AuditEntry{Actor: "ops", Action: "block", User: "a@x", DeviceID: fmt.Sprintf("D%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ov2 := NewOverrides(st)
	if err := ov2.Load(); err != nil {
		t.Fatal(err)
	}
	if act, ok := ov2.Lookup([]byte("a@x"), []byte("d1")); !ok || act != Block {
		t.Fatalf("override after reopen: %v %v", act, ok)
	}
	a2, err := NewAudit(st)
	if err != nil {
		t.Fatal(err)
	}
	e, err := a2.Append(AuditEntry{Actor: "ops", Action: "allow", User: "a@x", DeviceID: "D1"})
	if err != nil || e.Seq != 4 {
		t.Fatalf("sequence continues: %+v %v", e, err)
	}
	got, err := ReadAudit(st, a2, AuditFilter{DeviceID: "d1"}, 0)
	if err != nil || len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 4 {
		t.Fatalf("filtered trail %+v %v", got, err)
	}
	last, _ := ReadAudit(st, a2, AuditFilter{}, 2)
	if len(last) != 2 || last[0].Seq != 3 || last[1].Seq != 4 {
		t.Fatalf("newest two: %+v", last)
	}
}

func observeOne(d *Devices, user, dev string, now time.Time, action Action, reason Reason, cmd eas.Command) {
	d.Touch([]byte(user), []byte(dev), []byte("iPhone"), []byte("iOS/17.5.1 (21F90) dataaccessd/1.0"), now)
	dec := Decision{Action: action, Enforced: true}
	dec.addReason(reason)
	c := eas.Identify([]byte("iOS/17.5.1 (21F90) dataaccessd/1.0"), []byte("iPhone"), nil)
	d.Observe([]byte(user), []byte(dev), &dec, &c, Observation{Command: cmd, Version: eas.V161,
		Addr: netip.MustParseAddr("192.0.2.7"), Now: now})
}

func TestInventoryObserveAndList(t *testing.T) {
	d := NewDevices(nil)
	d.SetNode("gw1")
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	observeOne(d, "a@x", "D1", t0, Quarantine, ReasonDefault, eas.CmdSync)
	observeOne(d, "a@x", "D2", t0.Add(time.Minute), Allow, ReasonDeviceRule, eas.CmdPing)
	observeOne(d, "b@x", "D3", t0.Add(2*time.Minute), Block, ReasonIndividualBlock, eas.CmdFolderSync)
	r, _ := d.Get([]byte("a@x"), []byte("d1"))
	if r.State != DeviceQuarantined || r.QuarantinedAt != t0 || r.LastCommand != "Sync" || r.ProtocolVersion != "16.1" ||
		r.LastAddress.String() != "192.0.2.7" || r.Node != "gw1" || r.Client != "ios-mail" || r.OS != "iOS" ||
		r.OSVersion != "17.5.1" || fmt.Sprint(r.Reasons) != "[default-access]" || len(r.UserAgents) != 1 {
		t.Fatalf("record %+v", r)
	}
	// Leaving quarantine clears the entry time; a new User-Agent extends
	// the bounded history.
	observeOne(d, "a@x", "D1", t0.Add(time.Hour), Allow, ReasonAdminAllow, eas.CmdSync)
	for i := range 12 {
		d.Touch([]byte("a@x"), []byte("D1"), []byte("iPhone"), fmt.Appendf(nil, "iOS/18.%d (22A) dataaccessd/1.0", i), t0.Add(time.Duration(i+2)*time.Hour))
	}
	r, _ = d.Get([]byte("a@x"), []byte("D1"))
	if r.State != DeviceAllowed || !r.QuarantinedAt.IsZero() || r.DecidedAt != t0.Add(time.Hour) || len(r.UserAgents) != maxUserAgents ||
		r.UserAgents[maxUserAgents-1].UserAgent != "iOS/18.11 (22A) dataaccessd/1.0" || r.UserAgents[0].Last.IsZero() {
		t.Fatalf("after release %+v", r)
	}

	list := func(f DeviceFilter, sort string, off, lim int) []string {
		t.Helper()
		p, err := d.List(&f, sort, off, lim)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range p.Devices {
			ids = append(ids, r.DeviceID)
		}
		return ids
	}
	if got := fmt.Sprint(list(DeviceFilter{}, "", 0, 10)); got != "[D1 D3 D2]" {
		t.Fatalf("newest first: %s", got)
	}
	if got := fmt.Sprint(list(DeviceFilter{}, "device_id", 1, 1)); got != "[D2]" {
		t.Fatalf("page: %s", got)
	}
	if got := fmt.Sprint(list(DeviceFilter{User: "A@X"}, "-device_id", 0, 10)); got != "[D2 D1]" {
		t.Fatalf("user: %s", got)
	}
	if got := fmt.Sprint(list(DeviceFilter{State: "blocked"}, "", 0, 10)); got != "[D3]" {
		t.Fatalf("state: %s", got)
	}
	if got := fmt.Sprint(list(DeviceFilter{Reason: "device-rule", OS: "ios 17"}, "", 0, 10)); got != "[D2]" {
		t.Fatalf("reason+os: %s", got)
	}
	if got := fmt.Sprint(list(DeviceFilter{SeenSince: t0.Add(90 * time.Second)}, "", 0, 10)); got != "[D1 D3]" {
		t.Fatalf("seen_since: %s", got)
	}
	if got := fmt.Sprint(list(DeviceFilter{Q: "b@"}, "", 0, 10)); got != "[D3]" {
		t.Fatalf("q: %s", got)
	}
	for _, f := range []DeviceFilter{{State: "sleepy"}, {Reason: "whim"}, {Client: "pine"}} {
		if f.Validate() == nil {
			t.Errorf("filter %+v validated", f)
		}
	}
	if _, err := d.List(&DeviceFilter{}, "colour", 0, 1); err == nil {
		t.Fatal("unknown sort accepted")
	}
	if err := d.Forget("a@x", "d2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get([]byte("a@x"), []byte("D2")); ok || d.Len() != 2 {
		t.Fatal("forget left the record")
	}
}

// TestObserveZeroAllocs: a request of a device whose inventory is up to
// date allocates nothing.
func TestObserveZeroAllocs(t *testing.T) {
	d := NewDevices(nil)
	now := time.Now()
	observeOne(d, "a@x", "D1", now, Quarantine, ReasonDefault, eas.CmdSync)
	dec := Decision{Action: Quarantine, Enforced: true}
	dec.addReason(ReasonDefault)
	c := eas.Identify([]byte("iOS/17.5.1 (21F90) dataaccessd/1.0"), []byte("iPhone"), nil)
	user, dev := []byte("a@x"), []byte("D1")
	o := Observation{Command: eas.CmdSync, Version: eas.V161, Addr: netip.MustParseAddr("192.0.2.7"), Now: now}
	if n := testing.AllocsPerRun(200, func() { d.Observe(user, dev, &dec, &c, o) }); n != 0 {
		t.Fatalf("Observe allocates %.1f times", n)
	}
}

// fillDevices stores n devices of n/4 users with a full inventory each.
func fillDevices(tb testing.TB, n int) *Devices {
	tb.Helper()
	d := NewDevices(nil)
	d.SetNode("gw1")
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	info := eas.DeviceInfo{Model: "iPhone15C2", IMEI: "356789101234567", FriendlyName: "iPhone", OS: "iOS 17.5.1 21F90", OSLanguage: "en-US"}
	for i := range n {
		user := fmt.Appendf(nil, "user%d@corp.example.com", i/4)
		dev := fmt.Appendf(nil, "Appl%012d", i)
		actions := [...]Action{Allow, Quarantine, Block, Allow}
		observeOne(d, string(user), string(dev), t0.Add(time.Duration(i)*time.Second), actions[i%4], ReasonDefault, eas.CmdPing)
		d.Update(user, dev, t0, func(r *DeviceRecord) { r.Info = info })
	}
	return d
}

// BenchmarkDevicesListFirstPage: the first page (100, newest first) of
// `devices list` over 100,000 stored devices, unfiltered and filtered.
func BenchmarkDevicesListFirstPage(b *testing.B) {
	d := fillDevices(b, 100_000)
	for _, bc := range []struct {
		name string
		f    DeviceFilter
	}{{"all", DeviceFilter{}}, {"state=quarantined", DeviceFilter{State: DeviceQuarantined}}, {"q", DeviceFilter{Q: "user123"}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := d.List(&bc.f, "", 0, 100)
				if err != nil || len(p.Devices) == 0 {
					b.Fatal(err, len(p.Devices))
				}
			}
		})
	}
}

// TestInventoryMemoryPerDevice reports (and bounds) the heap one device's
// inventory record costs in the table.
func TestInventoryMemoryPerDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 20,000 records")
	}
	const n = 20_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := fillDevices(t, n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("inventory: %.0f bytes per device (%d devices)", per, d.Len())
	if per > 4096 {
		t.Fatalf("%.0f bytes per device, want under 4 KiB", per)
	}
	runtime.KeepAlive(d)
}

// TestBatchChangeAndAppend: a bulk action's overrides and audit entries
// are one store write each, numbered on from the trail's last entry.
func TestBatchChangeAndAppend(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	ov := NewOverrides(st)
	_ = ov.Set(Override{User: "a@x", DeviceID: "OLD", Action: "allow"})
	set := []Override{{User: "a@x", DeviceID: "D1", Action: "block"}, {User: "a@x", DeviceID: "D2", Action: "quarantine"}}
	if err := ov.Change(set, []Override{{User: "a@x", DeviceID: "old"}}); err != nil {
		t.Fatal(err)
	}
	if err := ov.Change([]Override{{User: "a@x", DeviceID: "D3", Action: "maybe"}}, nil); err == nil {
		t.Fatal("a bad action was stored")
	}
	re := NewOverrides(st)
	_ = re.Load()
	if re.Len() != 2 {
		t.Fatalf("%d overrides after reopen, want 2: %+v", re.Len(), re.All())
	}
	if a, ok := re.Lookup([]byte("a@x"), []byte("d2")); !ok || a != Quarantine {
		t.Fatalf("D2: %v %v", a, ok)
	}
	au, _ := NewAudit(st)
	_, _ = au.Append(AuditEntry{Action: "allow", User: "a@x", DeviceID: "OLD"})
	out, err := au.AppendAll([]AuditEntry{{Action: "block", User: "a@x", DeviceID: "D1"}, {Action: "quarantine", User: "a@x", DeviceID: "D2"}})
	if err != nil || len(out) != 2 || out[0].Seq != 2 || out[1].Seq != 3 {
		t.Fatalf("batch entries %+v %v", out, err)
	}
	all, _ := ReadAudit(st, au, AuditFilter{}, 0)
	if len(all) != 3 || all[2].DeviceID != "D2" {
		t.Fatalf("trail %+v", all)
	}
}

// BenchmarkDevicesTouchObserve is the device-table part of the gateway's
// decide path for a known device whose inventory is up to date: TouchVisit,
// then ObserveVisit (before Visit: Touch, then Observe), with a clock that moves a microsecond a request (so
// LastSeen is written once every million requests).
func BenchmarkDevicesTouchObserve(b *testing.B) {
	d := NewDevices(nil)
	d.SetNode("gw1")
	user, dev := []byte("jdoe@corp.example.com"), []byte("ApplDMPL69PZF18P")
	typ, ua := []byte("iPhone"), []byte("Apple-iPhone9C1/1402.100")
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	dec := Decision{Action: Allow, Enforced: false}
	dec.addReason(ReasonReportOnlyPolicy)
	dec.addReason(ReasonCompliant)
	dec.Verdict = Verdict{Valid: true, State: StateCompliant, Source: "file", Fetched: now}
	c := eas.Identify(ua, typ, nil)
	o := Observation{Command: eas.CmdSync, Version: eas.V161, Addr: netip.MustParseAddr("192.0.2.7"), Now: now}
	d.Touch(user, dev, typ, ua, now)
	d.Observe(user, dev, &dec, &c, o)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		o.Now = now
		var v Visit // as proxy.(*state).decide runs it
		d.TouchVisit(&v, user, dev, typ, ua, now)
		if v.Record.DeviceID == "" {
			b.Fatal("no record")
		}
		d.ObserveVisit(&v, user, dev, &dec, &c, o)
	}
}

// TestObserveVisit: ObserveVisit writes what Observe writes, whether the
// Visit's copy is current, stale (another request changed the record
// since), from UpdateVisit, or zero; and allocates nothing when nothing
// changed.
func TestObserveVisit(t *testing.T) {
	d := NewDevices(nil)
	d.SetNode("gw1")
	user, dev := []byte("a@x"), []byte("D1")
	typ, ua := []byte("iPhone"), []byte("iOS/17.5.1 (21F90) dataaccessd/1.0")
	c := eas.Identify(ua, typ, nil)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	o := Observation{Command: eas.CmdSync, Version: eas.V161, Addr: netip.MustParseAddr("192.0.2.7"), Now: now}
	allow := Decision{Action: Allow, Enforced: true}
	allow.addReason(ReasonDefault)
	block := Decision{Action: Block, Enforced: true}
	block.addReason(ReasonIndividualBlock)

	var zero Visit
	d.ObserveVisit(&zero, user, dev, &allow, &c, o) // unknown device: nothing
	if d.Len() != 0 {
		t.Fatal("ObserveVisit created a record")
	}
	var v Visit
	d.TouchVisit(&v, user, dev, typ, ua, now)
	if v.Record.DeviceID != "D1" || !v.Record.FirstSeen.Equal(now) {
		t.Fatalf("TouchVisit copy %+v", v.Record)
	}
	d.ObserveVisit(&v, user, dev, &allow, &c, o)
	if r, _ := d.Get(user, dev); r.State != DeviceAllowed || r.LastCommand != "Sync" || r.Node != "gw1" {
		t.Fatalf("first observation: %+v", r.Inventory)
	}

	// A current copy that matches: nothing to do, nothing allocated.
	d.TouchVisit(&v, user, dev, typ, ua, now)
	if n := testing.AllocsPerRun(200, func() { d.ObserveVisit(&v, user, dev, &allow, &c, o) }); n != 0 {
		t.Fatalf("ObserveVisit allocates %.1f times", n)
	}

	// A stale copy: another request blocked the device after this one's
	// TouchVisit; this one's allow (its copy says allowed) must still land.
	d.TouchVisit(&v, user, dev, typ, ua, now)
	d.Observe(user, dev, &block, &c, o)
	d.ObserveVisit(&v, user, dev, &allow, &c, o)
	if r, _ := d.Get(user, dev); r.State != DeviceAllowed || r.PolicyAction != "allow" {
		t.Fatalf("stale visit: %+v", r.Inventory)
	}

	// The record replaced from another node after TouchVisit.
	d.TouchVisit(&v, user, dev, typ, ua, now)
	rec, _ := d.Get(user, dev)
	rec.LastSeen, rec.LastCommand = now.Add(time.Second), "Ping"
	data, _ := MarshalRecord(&rec)
	d.ApplyRemote(string(user)+"\x00"+string(dev), data)
	d.ObserveVisit(&v, user, dev, &allow, &c, o)
	if r, _ := d.Get(user, dev); r.LastCommand != "Sync" {
		t.Fatalf("after a remote change: %+v", r.Inventory)
	}

	// UpdateVisit refreshes the copy: DeviceInformation captured, then
	// observed.
	d.TouchVisit(&v, user, dev, typ, ua, now)
	d.UpdateVisit(&v, user, dev, now, func(r *DeviceRecord) { r.Info.Model = "iPhone15C2" })
	if v.Record.Info.Model != "iPhone15C2" {
		t.Fatalf("UpdateVisit copy %+v", v.Record.Info)
	}
	o.Command = eas.CmdPing
	d.ObserveVisit(&v, user, dev, &block, &c, o)
	if r, _ := d.Get(user, dev); r.State != DeviceBlocked || r.LastCommand != "Ping" || r.Info.Model != "iPhone15C2" {
		t.Fatalf("after UpdateVisit: %+v", r)
	}

	// Forgotten after TouchVisit: ObserveVisit does not bring it back.
	d.TouchVisit(&v, user, dev, typ, ua, now)
	if err := d.Forget("a@x", "d1"); err != nil {
		t.Fatal(err)
	}
	d.ObserveVisit(&v, user, dev, &allow, &c, o)
	if d.Len() != 0 {
		t.Fatal("ObserveVisit brought a forgotten record back")
	}
}
