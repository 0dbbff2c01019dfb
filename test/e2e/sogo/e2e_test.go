package sogo_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
)

// Users: each protocol/query-form variant owns one user, so the variants run
// in parallel without seeing each other's deliveries; erin is the long Ping's,
// frank and grace are quarantined (quarantine_test.go), heidi and ivan
// authenticate with client certificates (certauth_test.go).
var (
	variants = []struct {
		name    string
		version eas.Version
		base64  bool
		user    string
	}{
		{"14.1-plain", eas.V141, false, "alice"},
		{"14.1-base64", eas.V141, true, "bob"},
		{"12.1-plain", eas.V121, false, "carol"},
		{"12.1-base64", eas.V121, true, "dave"},
	}
	longPingUser = "erin"
	allUsers     = []string{"alice", "bob", "carol", "dave", longPingUser, "frank", "grace", "heidi", "ivan"}
)

// route is where the phone connects: SOGo (through its nginx) or easgate in
// front of the same server.
type route struct {
	name string
	url  string
	skip string // non-empty: why this route is not available
}

func routes(t *testing.T, e *sogoEnv) []route {
	t.Helper()
	if gwErr != nil {
		t.Fatalf("easgate serve could not be started: %v", gwErr)
	}
	via := route{name: "via-easgate", skip: gwSkip}
	if gw != nil {
		via.url = gw.url
	}
	return []route{{name: "direct", url: e.URL}, via}
}

// TestLifecycle drives a phone's life cycle for protocol 14.1 and 12.1 in
// both query forms, directly against SOGo and through easgate: OPTIONS,
// Provision, Settings with DeviceInformation, FolderSync, Sync of the Inbox
// until every message in the mailbox arrived, a Ping woken by a delivery, and
// the Sync that fetches the new message.
//
// It runs in parallel with TestPingHeldAtLeast60s (different users).
func TestLifecycle(t *testing.T) {
	e := requireSOGo(t)
	rs := routes(t, e)
	t.Parallel()
	for _, r := range rs {
		t.Run(r.name, func(t *testing.T) {
			if r.skip != "" {
				t.Skip(r.skip)
			}
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					t.Parallel()
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
					defer cancel()
					c := newClient(r.url, v.user, e.Passwords[v.user], v.version, v.base64, v.name[:2])
					m := setUp(t, ctx, e, c)
					shortPing(t, ctx, e, c, m)
				})
			}
		})
	}
}

// shortPing holds a Ping, delivers a message while it is held, and expects
// the new-mail answer, then syncs the message.
func shortPing(t *testing.T, ctx context.Context, e *sogoEnv, c *easClient, m *mailbox) {
	t.Helper()
	type answer struct {
		info eas.PingInfo
		held time.Duration
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		info, held, err := c.ping(ctx, 120, m.inbox)
		done <- answer{info, held, err}
	}()
	// Give the Ping time to reach SOGo. SOGo compares the folder with the
	// phone's last Sync state, so a delivery racing ahead of the request is
	// reported too; either way the answer must be Status 2.
	select {
	case a := <-done:
		t.Fatalf("Ping answered before any delivery (after %v): status %d, err %v", a.held, a.info.Status, a.err)
	case <-time.After(2 * time.Second):
	}
	subject, err := e.deliver(ctx, c.user, "short ping")
	if err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	if err := expectNewMail(a.info, m.inbox); err != nil {
		t.Fatal(err)
	}
	t.Logf("Ping answered Status 2 after %v", a.held.Round(time.Millisecond))
	syncNewMail(t, ctx, e, c, m, subject)
}

// syncNewMail syncs after a Ping reported new mail and checks the new
// message and the totals.
func syncNewMail(t *testing.T, ctx context.Context, e *sogoEnv, c *easClient, m *mailbox, subject string) {
	t.Helper()
	before := len(m.items)
	if _, err := c.syncInbox(ctx, m); err != nil {
		t.Fatalf("Sync after Ping: %v", err)
	}
	if got := len(m.items) - before; got != 1 {
		t.Errorf("Sync after Ping brought %d new messages, want 1", got)
	}
	found := false
	for _, s := range m.items {
		found = found || s == subject
	}
	if !found {
		t.Errorf("the delivered message %q did not arrive", subject)
	}
	if err := checkCount(ctx, e, c.user, m); err != nil {
		t.Error(err)
	}
}

// TestPingHeldAtLeast60s holds one Ping for a minute before mail arrives:
// the proxy must neither time it out nor answer it early, and must pass the
// new-mail answer through. It runs through easgate when easgate is
// available, else directly against SOGo.
func TestPingHeldAtLeast60s(t *testing.T) {
	e := requireSOGo(t)
	rs := routes(t, e)
	r := rs[1]
	if r.skip != "" {
		t.Logf("running directly against SOGo: %s", r.skip)
		r = rs[0]
	}
	t.Parallel()
	const deliverAfter = 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newClient(r.url, longPingUser, e.Passwords[longPingUser], eas.V141, false, "LP")
	m := setUp(t, ctx, e, c)

	type answer struct {
		info eas.PingInfo
		held time.Duration
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		info, held, err := c.ping(ctx, 180, m.inbox)
		done <- answer{info, held, err}
	}()
	select {
	case a := <-done:
		t.Fatalf("%s: Ping answered after %v, before the delivery at %v: status %d, err %v",
			r.name, a.held, deliverAfter, a.info.Status, a.err)
	case <-time.After(deliverAfter):
	}
	subject, err := e.deliver(ctx, c.user, "long ping")
	if err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil {
		t.Fatalf("%s: %v", r.name, a.err)
	}
	if err := expectNewMail(a.info, m.inbox); err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	if a.held < deliverAfter {
		t.Fatalf("%s: Ping held %v, want at least %v", r.name, a.held, deliverAfter)
	}
	t.Logf("%s: Ping held %v, answered Status 2 for the Inbox", r.name, a.held.Round(time.Millisecond))
	syncNewMail(t, ctx, e, c, m, subject)
}

// TestBasicAuthFailure checks that a wrong password and an unknown user get
// SOGo's own 401 and Basic challenge (realm "SOGo") through easgate as
// directly. A request without Authorization is refused by SOGo directly
// (an EAS POST with 403, OPTIONS or a POST without a WBXML body with 401),
// and by easgate itself (auth.mode credentials): 401 with its own Basic
// challenge, without asking SOGo.
func TestBasicAuthFailure(t *testing.T) {
	e := requireSOGo(t)
	cases := []struct {
		name, user, pass string
		cmd              eas.Command // CmdOptions: an OPTIONS request
	}{
		{"wrong password FolderSync", "alice", "not-" + e.Passwords["alice"], eas.CmdFolderSync},
		{"wrong password Sync 12.1", "carol", "wrong", eas.CmdSync},
		{"wrong password OPTIONS", "bob", "wrong", eas.CmdOptions},
		{"unknown user Provision", "mallory", "whatever", eas.CmdProvision},
		{"no Authorization FolderSync", "alice", "", eas.CmdFolderSync},
		{"no Authorization OPTIONS", "alice", "", eas.CmdOptions},
	}
	send := func(t *testing.T, url, user, pass string, cmd eas.Command) (*easResponse, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		v := eas.V141
		if cmd == eas.CmdSync {
			v = eas.V121
		}
		c := newClient(url, user, pass, v, false, "AF")
		c.noAuth = pass == ""
		var resp *easResponse
		var err error
		switch cmd {
		case eas.CmdOptions:
			resp, err = c.options(ctx)
		case eas.CmdProvision:
			resp, err = c.post(ctx, cmd, provisionBody(c.version, nil))
		case eas.CmdSync:
			resp, err = c.post(ctx, cmd, syncBody(c.version, "0", "mail%2FINBOX", syncWindow))
		default:
			resp, err = c.post(ctx, cmd, folderSyncBody("0"))
		}
		if err != nil {
			t.Fatal(err)
		}
		return resp, c.deviceID
	}
	rs := routes(t, e)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			direct, _ := send(t, rs[0].url, tc.user, tc.pass, tc.cmd)
			want := http.StatusUnauthorized
			if tc.pass == "" && direct.code == http.StatusForbidden {
				want = http.StatusForbidden
			}
			if direct.code != want {
				t.Fatalf("direct: want HTTP %d, got %s", want, direct.dump())
			}
			challenge := direct.header.Get("WWW-Authenticate")
			if want == http.StatusUnauthorized && !strings.HasPrefix(strings.ToLower(challenge), "basic") {
				t.Fatalf("direct: WWW-Authenticate %q, want a Basic challenge", challenge)
			}
			if rs[1].skip != "" {
				t.Skip(rs[1].skip)
			}
			via, device := send(t, rs[1].url, tc.user, tc.pass, tc.cmd)
			got := via.header.Get("WWW-Authenticate")
			if tc.pass == "" {
				// easgate's own refusal: 401 and a Basic challenge (realm:
				// the request's host, as IIS does), never SOGo's.
				if via.code != http.StatusUnauthorized || !strings.HasPrefix(strings.ToLower(got), "basic") || got == challenge {
					t.Fatalf("via easgate: want easgate's 401 with its own Basic challenge, got %s", via.dump())
				}
				if tc.cmd != eas.CmdOptions { // OPTIONS names no device
					ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
					defer cancel()
					if cmds, err := e.upstreamCommandsAfter(ctx, device, 0); err != nil || len(cmds) > 0 {
						t.Errorf("via easgate: a request without Authorization reached SOGo (%v, err %v)", cmds, err)
					}
				}
				return
			}
			if via.code != direct.code {
				t.Fatalf("via easgate: HTTP %d, SOGo directly answers %d\n%s", via.code, direct.code, via.dump())
			}
			if got != challenge {
				t.Errorf("via easgate: WWW-Authenticate %q, SOGo's is %q", got, challenge)
			}
		})
	}
}
