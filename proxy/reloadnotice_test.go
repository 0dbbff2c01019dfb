package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
)

// TestReloadNoticeForHeldRequest: a device blocked by a reload while its
// Ping is held (at the CAS, or by easgate during quarantine) gets its
// device_block notice when the held Ping is answered, not at its next
// request; and only once.
func TestReloadNoticeForHeldRequest(t *testing.T) {
	for _, tc := range []struct {
		desc, access string
		held         func(p *testProxy, cas *countingCAS) bool
		before       []string // notices before the reload
	}{
		{desc: "held at the CAS", access: "allow",
			held: func(p *testProxy, cas *countingCAS) bool { return cas.f.Stats().HeldPings == 1 }},
		{desc: "held by easgate in quarantine", access: "quarantine", before: []string{"quarantine"},
			held: func(p *testProxy, cas *countingCAS) bool { return p.s.registry.Watched() == 1 }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 1, MessageSize: 256, AttachmentSize: -1})
			dir := t.TempDir()
			wh := newHook(t)
			base := strings.Replace(enforceYAML(cas.url, dir, `  default_access: `+tc.access+`
  users:
    jdoe@corp.example.com:
      blocked_devices: [SOMEOTHERDEVICE]
  quarantine:
    admin_webhook: `+wh.srv.URL+`/hook
`), "drain: 1s", "drain: 60s", 1)
			p := startProxy(t, mustParse(t, base))
			const dev = "androidc5555555555"
			phone := newPhone(p, user, dev, profile("gmail", eas.V141))
			if err := phone.Setup(); err != nil {
				t.Fatal(err)
			}
			if tc.access == "quarantine" {
				// The quarantine notice is fetched and acknowledged; then
				// easgate holds the device's Ping for its heartbeat.
				if _, err := phone.SyncAll(phone.InboxID); err != nil {
					t.Fatal(err)
				}
				if _, _, err := phone.Sync(phone.InboxID); err != nil {
					t.Fatal(err)
				}
				// easbench tells easgate's emulated sync keys apart from
				// Exchange's (bench.IsEmulatedSyncKey): they must agree.
				if phone.Decision() != bench.DecisionQuarantined {
					t.Fatalf("easbench sees the quarantined phone as %q", phone.Decision())
				}
			} else if phone.Decision() != bench.DecisionAllowed {
				t.Fatalf("easbench sees the allowed phone as %q", phone.Decision())
			}
			waitFor(t, "the notices before the reload", func() bool { return len(wh.got()) == len(tc.before) })
			done := make(chan int, 1)
			go func() {
				st, _, _ := phone.Ping(900)
				done <- st
			}()
			waitFor(t, "the Ping to be held", func() bool { return tc.held(p, cas) })
			if err := p.s.Reload(mustParse(t, strings.Replace(base, "[SOMEOTHERDEVICE]", "[SOMEOTHERDEVICE, "+dev+"]", 1))); err != nil {
				t.Fatal(err)
			}
			select {
			case st := <-done:
				if st != 129 {
					t.Fatalf("held Ping after the reload: Status %d, want 129", st)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the held Ping was not answered after the reload blocked its device")
			}
			// No further request: the notice came with the answer.
			waitFor(t, "the block notice", func() bool { return len(wh.got()) == len(tc.before)+1 })
			ev := wh.got()[len(tc.before)]
			if ev.Event != "block" || ev.DeviceID != dev || ev.User != user || !ev.Enforced || len(ev.Reasons) == 0 {
				t.Fatalf("notice %+v, want an enforced block of %s with reasons", ev, dev)
			}
			if rec, _ := p.s.cur.Load().enf.acc.Devices.Get([]byte(user), []byte(dev)); rec.LastAction != "block" {
				t.Fatalf("device table LastAction %q, want block", rec.LastAction)
			}
			// The next request is blocked without a second notice.
			if _, _, err := phone.Sync(phone.InboxID); err == nil {
				t.Fatal("Sync of a blocked device succeeded")
			}
			time.Sleep(300 * time.Millisecond)
			if n := len(wh.got()); n != len(tc.before)+1 {
				t.Fatalf("%d notices after the next request, want %d: %+v", n, len(tc.before)+1, wh.got())
			}
		})
	}
}

// TestReloadRejectedSummary: a config file with errors is logged error by
// error, then with one summary line; the running configuration stays.
func TestReloadRejectedSummary(t *testing.T) {
	cas := newFakeCAS(t)
	good := testYAML([]string{cas.url()}, nil)
	p, logs := startProxyLogged(t, mustParse(t, good))
	old := p.s.cur.Load()
	path := tempFile(t, "easgate.yaml", good+"bogus_key: 1\npolicy:\n  default_access: sometimes\n")
	if p.s.reloadFile(path) {
		t.Fatal("a file with errors was applied")
	}
	if p.s.cur.Load() != old {
		t.Fatal("the running configuration was replaced")
	}
	var summaries, details int
	for _, l := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(l, "configuration reload rejected"):
			summaries++
			if !strings.Contains(l, "2 error(s)") || !strings.Contains(l, "keeping the running configuration") || !strings.Contains(l, `"errors":2`) {
				t.Errorf("summary line %s", l)
			}
		case strings.Contains(l, "bogus_key: unknown key"), strings.Contains(l, "policy.default_access: invalid value"):
			details++
		}
	}
	if summaries != 1 || details != 2 {
		t.Fatalf("%d summary line(s) and %d error line(s), want 1 and 2:\n%s", summaries, details, logs)
	}
	// A file that cannot be read: one line too.
	if p.s.reloadFile(path + ".missing") {
		t.Fatal("a missing file was applied")
	}
	if n := strings.Count(logs.String(), "configuration reload rejected"); n != 2 {
		t.Fatalf("%d summary lines after a missing file, want 2:\n%s", n, logs)
	}
}
