package sogo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// The quarantine gateway: every user must have a compliant device
// (policy.compliance.require_for: [all]), verdicts come from a CSV file the
// tests rewrite, and the default access is quarantine.

// quarantineSubject is the notice's subject in the gateway's configuration.
// It does not start with "easgate e2e ", so checkCount rejects a notice that
// leaks into the real mailbox after the release.
const quarantineSubject = "Quarantined: approve this phone to get your mail (easgate e2e notice)"

// negativeTTL is policy.compliance.cache.negative_ttl of the quarantine
// gateway. A reload of the compliance file does not replace verdicts
// already cached, so a device that was "unknown" stays quarantined until
// its cached verdict is refreshed: the default (2m, refreshed from 1m on)
// would hold the release back by a minute or more.
const negativeTTL = "5s"

var quarantineVariants = []struct {
	name    string
	version eas.Version
	user    string
}{
	{"14.1", eas.V141, "frank"},
	{"12.1", eas.V121, "grace"},
}

// complianceFile is the gateway's policy.compliance.source.path: CSV rows
// user,device_id,state. It is rewritten whole (a new file renamed over the
// old one) so the gateway never reads half a file.
type complianceFile struct {
	path string
	mu   sync.Mutex
	rows map[[2]string]string // user, device → state
}

var compliance *complianceFile // set when the quarantine gateway is configured

func (f *complianceFile) set(user, device, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rows == nil {
		f.rows = map[[2]string]string{}
	}
	f.rows[[2]string{user, device}] = state
	var b strings.Builder
	b.WriteString("user,device_id,state\n")
	keys := make([][2]string, 0, len(f.rows))
	for k := range f.rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	for _, k := range keys {
		fmt.Fprintf(&b, "%s,%s,%s\n", k[0], k[1], f.rows[k])
	}
	tmp := f.path + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

func quarantineSetup(e *sogoEnv) gwSetup {
	return gwSetup{
		name: "quarantine",
		config: func(dir string, listenPort, adminPort int) (string, error) {
			compliance = &complianceFile{path: filepath.Join(dir, "compliance.csv")}
			// A row for another device of a quarantined user: the file is
			// not empty, and only the exact device counts.
			if err := compliance.set(quarantineVariants[0].user, "E2EOTHERPHONE", "compliant"); err != nil {
				return "", err
			}
			return baseConfig(dir, e.Upstream, listenPort, adminPort, "  plain_http: true\n", fmt.Sprintf(`auth:
  mode: credentials
policy:
  mode: enforce
  default_access: quarantine
  compliance:
    require_for: [all]
    source:
      type: file
      path: %s
    cache:
      negative_ttl: %s
  quarantine:
    notice:
      from: "IT Service Desk <it@%s>"
      subject: %q
      enroll_url: https://enroll.easgate.test/
`, compliance.path, negativeTTL, e.MailDomain, quarantineSubject)), nil
		},
		readyClient: func(url string) *easClient {
			u := e.Users[0]
			return newClient(url, u, e.Passwords[u], eas.V141, false, "GQ") // OPTIONS is never quarantined
		},
	}
}

// TestQuarantine runs a phone that is not in the compliance file through
// the quarantine gateway, for protocol 14.1 and 12.1: it sees SOGo's folder
// hierarchy and one notice in its Inbox, nothing of the real mailbox; its
// changes are not acknowledged and never reach the mailbox. Then the file
// marks it compliant: its next Sync reaches SOGo with easgate's sync key,
// SOGo answers "invalid sync key", and the phone resyncs the whole Inbox
// from SyncKey 0.
func TestQuarantine(t *testing.T) {
	e := requireSOGo(t)
	g := needGateway(t, qgw, qgwErr)
	t.Parallel()
	for _, v := range quarantineVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			quarantineFlow(t, ctx, e, g, v.user, v.version)
		})
	}
}

func quarantineFlow(t *testing.T, ctx context.Context, e *sogoEnv, g *gateway, user string, v eas.Version) {
	start := time.Now()
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s (user %s, %s): %v", name, user, v, err)
		}
	}
	// SOGo's own view first: another phone syncs directly, which names the
	// real messages (their ServerIds) a quarantined phone might try to
	// change. The mailbox as Dovecot holds it afterwards is the baseline.
	peek := newClient(e.URL, user, e.Passwords[user], v, false, "QP")
	seen := setUp(t, ctx, e, peek)
	ids := make([]string, 0, len(seen.items))
	for id := range seen.items {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) < 3 {
		t.Fatalf("%s's Inbox holds %d messages; the test needs 3", user, len(ids))
	}
	before, err := e.mailState(ctx, user)
	step("Dovecot's view", err)

	// Quarantined: the device is not in the compliance file.
	c := g.client(user, e.Passwords[user], v, false, "Q", nil)
	defer c.close()
	step("OPTIONS", c.checkOptions(ctx))
	_, err = c.provision(ctx)
	step("Provision", err)
	step("Settings", c.settings(ctx))
	fs, err := c.folderSyncAll(ctx)
	step("FolderSync", err)
	inbox, _ := fs.Inbox()
	if inbox.ServerID != seen.inbox {
		t.Fatalf("FolderSync through easgate names the Inbox %q, SOGo directly %q", inbox.ServerID, seen.inbox)
	}
	trash := ""
	for _, f := range fs.Folders {
		if f.Type == eas.FolderTypeDeletedItems {
			trash = f.ServerID
		}
	}
	if trash == "" {
		t.Fatalf("FolderSync: no Deleted Items folder (Type 4) among %v", fs.Folders)
	}

	// The notice is pending: a Ping reports the Inbox at once.
	info, held, err := c.ping(ctx, 120, inbox.ServerID)
	step("Ping while the notice is pending", err)
	step("Ping while the notice is pending", expectNewMail(info, inbox.ServerID))
	if held > 30*time.Second {
		t.Errorf("Ping while the notice is pending was held %v; it should answer at once", held)
	}

	// Sync: exactly the notice, nothing of the real mailbox.
	m := &mailbox{inbox: inbox.ServerID}
	rounds, err := c.syncInbox(ctx, m)
	step("Sync while quarantined", err)
	if len(m.items) != 1 {
		t.Fatalf("Sync while quarantined brought %d items in %d rounds, want only the notice: %q", len(m.items), rounds, m.items)
	}
	var noticeID string
	for id, subject := range m.items {
		noticeID = id
		if subject != quarantineSubject {
			t.Fatalf("the only item has Subject %q, want the notice %q", subject, quarantineSubject)
		}
		if _, isReal := seen.items[id]; isReal {
			t.Fatalf("the notice's ServerId %q is the ServerId of a real message", id)
		}
	}
	t.Logf("quarantined: Sync brought the notice (ServerId %s) and nothing else in %d rounds", noticeID, rounds)

	// The phone's changes: mark a real message read, delete another
	// (DeletesAsMoves), mark the notice read; then move a third real one.
	changes := []clientChange{
		{kind: wbxml.AirSyncChange, id: ids[0], read: true},
		{kind: wbxml.AirSyncDelete, id: ids[1]},
		{kind: wbxml.AirSyncChange, id: noticeID, read: true},
	}
	r, err := c.syncRequest(ctx, m.syncKey, m.inbox, syncChangesBody(v, m.syncKey, m.inbox, changes))
	step("Sync with changes while quarantined", err)
	for _, ch := range changes[:2] {
		key := ch.kind.String() + " " + ch.id
		st, answered := r.responses[key]
		if !answered || st == 1 {
			// No Responses entry, or Status 1, tells the phone the change was saved.
			t.Errorf("%s of a real message while quarantined: answered=%v Status %d; it must not be acknowledged (responses %v)",
				ch.kind, answered, st, r.responses)
		} else {
			t.Logf("%s of real message %s: Status %d (not saved)", ch.kind, ch.id, st)
		}
	}
	if st, answered := r.responses["AirSync:Change "+noticeID]; answered && st != 1 {
		t.Errorf("marking the notice read: Status %d; the notice is easgate's own item and the change should succeed", st)
	}
	if len(r.adds) != 0 {
		t.Errorf("Sync with changes while quarantined brought %d items: %q", len(r.adds), r.adds)
	}
	m.syncKey = r.syncKey
	if how, err := c.moveDenied(ctx, ids[2], m.inbox, trash); err != nil {
		t.Error(err)
	} else {
		t.Logf("MoveItems of real message %s: refused (%s)", ids[2], how)
	}
	after, err := e.mailState(ctx, user)
	step("Dovecot's view", err)
	if d := after.diff(before); d != "" {
		t.Errorf("the mailbox changed while the phone was quarantined: %s", d)
	}

	// Still quarantined: with the notice delivered a Ping has nothing to
	// report and is held. The compliance file then marks the device
	// compliant; easgate re-decides the held Ping and answers that the
	// Inbox changed, so the phone syncs.
	type answer struct {
		info eas.PingInfo
		held time.Duration
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		info, held, err := c.ping(ctx, 600, m.inbox)
		done <- answer{info, held, err}
	}()
	select {
	case a := <-done:
		t.Fatalf("Ping of a quarantined device with nothing pending answered after %v (Status %d, err %v); it should be held",
			a.held, a.info.Status, a.err)
	case <-time.After(3 * time.Second):
	}
	step("compliance file", compliance.set(user, c.deviceID, "compliant"))
	released := time.Now()
	a := <-done
	step("held Ping at the release", a.err)
	step("held Ping at the release", expectNewMail(a.info, m.inbox))
	t.Logf("released: the held Ping answered Status 2 %v after the compliance file changed", time.Since(released).Round(time.Millisecond))

	// Nothing but Provision, Settings and FolderSync reached SOGo so far
	// (OPTIONS carries no DeviceId).
	cmds, err := e.upstreamCommands(c.deviceID)
	step("nginx access log", err)
	for _, want := range []string{"Provision", "Settings", "FolderSync"} {
		if !slices.Contains(cmds, want) {
			t.Errorf("%s of the quarantined phone did not reach SOGo (requests that did: %v)", want, cmds)
		}
	}
	for _, cmd := range cmds {
		if cmd != "Provision" && cmd != "Settings" && cmd != "FolderSync" {
			t.Errorf("%s of the quarantined phone reached SOGo (requests that did: %v)", cmd, cmds)
		}
	}

	// The phone's next Sync carries easgate's key to SOGo, which does not
	// know it: Status 3, and the phone starts over from SyncKey 0.
	_, err = c.syncOnce(ctx, m.syncKey, m.inbox)
	var se *syncStatusError
	switch {
	case err == nil:
		t.Fatalf("SOGo accepted easgate's sync key %q after the release; it should answer Status 3", m.syncKey)
	case !errors.As(err, &se):
		step("first Sync after the release", err)
	case se.status != 3:
		t.Fatalf("first Sync after the release: want Status 3 (invalid sync key), got %v", err)
	}
	if cmds, err := e.upstreamCommandsAfter(ctx, c.deviceID, len(cmds)+1); err != nil || len(cmds) == 0 || cmds[len(cmds)-1] != "Sync" {
		t.Errorf("the first Sync after the release did not reach SOGo (requests that did: %v, err %v)", cmds, err)
	}
	m = &mailbox{inbox: m.inbox}
	rounds, err = c.syncInbox(ctx, m)
	step("Sync from SyncKey 0 after the release", err)
	step("message count after the release", checkCount(ctx, e, user, m))
	t.Logf("after the release: %d messages in %d Sync rounds, as many as Dovecot holds", len(m.items), rounds)
	for id := range seen.items {
		if _, ok := m.items[id]; !ok {
			t.Errorf("message %s (%q) did not arrive after the release", id, seen.items[id])
		}
	}
	after, err = e.mailState(ctx, user)
	step("Dovecot's view", err)
	if d := after.diff(before); d != "" {
		t.Errorf("the mailbox changed between the quarantine and the resync: %s", d)
	}
	// A released phone is an ordinary phone: new mail wakes its Ping.
	shortPing(t, ctx, e, c, m)
	t.Logf("%s %s: quarantine, release and resync took %v", user, v, time.Since(start).Round(time.Millisecond))
}

// clientChange is one change the phone makes to an item in a Sync request.
type clientChange struct {
	kind wbxml.Tag // AirSyncChange or AirSyncDelete
	id   string    // ServerId
	read bool      // Change: mark read
}

// syncChangesBody is a Sync of one collection carrying the phone's own
// changes (MS-ASCMD §2.2.3.24 Commands).
func syncChangesBody(v eas.Version, key, collection string, changes []clientChange) []byte {
	return encode(func(e *wbxml.Encoder) {
		e.Start(wbxml.AirSyncSync)
		e.Start(wbxml.AirSyncCollections)
		e.Start(wbxml.AirSyncCollection)
		if v < eas.V140 {
			e.Element(wbxml.AirSyncClass, "Email")
		}
		e.Element(wbxml.AirSyncSyncKey, key)
		e.Element(wbxml.AirSyncCollectionId, collection)
		e.Empty(wbxml.AirSyncDeletesAsMoves)
		e.Empty(wbxml.AirSyncGetChanges)
		e.Element(wbxml.AirSyncWindowSize, "10")
		e.Start(wbxml.AirSyncCommands)
		for _, ch := range changes {
			e.Start(ch.kind)
			e.Element(wbxml.AirSyncServerId, ch.id)
			if ch.kind == wbxml.AirSyncChange {
				e.Start(wbxml.AirSyncApplicationData)
				read := "0"
				if ch.read {
					read = "1"
				}
				e.Element(wbxml.EmailRead, read)
				e.End()
			}
			e.End()
		}
		e.End()
		e.End()
		e.End()
		e.End()
	})
}

func moveItemsBody(id, src, dst string) []byte {
	return encode(func(e *wbxml.Encoder) {
		e.Start(wbxml.MoveMoveItems)
		e.Start(wbxml.MoveMove)
		e.Element(wbxml.MoveSrcMsgId, id)
		e.Element(wbxml.MoveSrcFldId, src)
		e.Element(wbxml.MoveDstFldId, dst)
		e.End()
		e.End()
	})
}

// moveDenied sends MoveItems for a real message and checks that it was
// refused: HTTP 403, or a MoveItems answer with no successful move (Status
// 3 is success, MS-ASCMD §2.2.3.177.9) and no new ServerId. It describes
// the refusal.
func (c *easClient) moveDenied(ctx context.Context, id, src, dst string) (string, error) {
	resp, err := c.post(ctx, eas.CmdMoveItems, moveItemsBody(id, src, dst))
	if err != nil {
		return "", fmt.Errorf("MoveItems: %w", err)
	}
	if resp.code == http.StatusForbidden {
		return "HTTP 403", nil
	}
	if err := expectWBXML("MoveItems", resp); err != nil {
		return "", fmt.Errorf("MoveItems while quarantined: want a denial (HTTP 403 or a MoveItems status), got %w", err)
	}
	root, err := parseTree(resp.body)
	if err != nil || root.tag != wbxml.MoveMoveItems {
		return "", fmt.Errorf("MoveItems while quarantined: not a MoveItems answer (%v)\n%s", err, resp.dump())
	}
	for _, r := range root.all(wbxml.MoveResponse) {
		if r.child(wbxml.MoveStatus).int() == 3 || r.child(wbxml.MoveDstMsgId) != nil {
			return "", fmt.Errorf("MoveItems while quarantined was answered as done\n%s", resp.dump())
		}
	}
	st := root.child(wbxml.MoveStatus)
	if (st == nil || st.int() == 1 || st.int() == 3) && len(root.all(wbxml.MoveResponse)) == 0 {
		return "", fmt.Errorf("MoveItems while quarantined: neither a refusing status nor a Response\n%s", resp.dump())
	}
	return fmt.Sprintf("HTTP %d, MoveItems Status %s", resp.code, st.str()), nil
}
