package quarantine

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var versions = []eas.Version{eas.V121, eas.V140, eas.V141, eas.V161}

// allCommands are the commands a phone can send.
var allCommands = []eas.Command{
	eas.CmdSync, eas.CmdSendMail, eas.CmdSmartForward, eas.CmdSmartReply, eas.CmdGetAttachment,
	eas.CmdFolderSync, eas.CmdFolderCreate, eas.CmdFolderDelete, eas.CmdFolderUpdate, eas.CmdMoveItems,
	eas.CmdGetItemEstimate, eas.CmdMeetingResponse, eas.CmdSearch, eas.CmdSettings, eas.CmdPing,
	eas.CmdItemOperations, eas.CmdProvision, eas.CmdResolveRecipients, eas.CmdValidateCert, eas.CmdFind,
	eas.CmdGetHierarchy, eas.CmdUnknown, eas.CmdOptions,
}

// TestBlock checks the block answer for every command × version: 403 with
// no body before 14.0 and for commands without an XML root, HTTP 200 with
// Status 129 in the command's namespace from 14.0, OPTIONS forwarded.
func TestBlock(t *testing.T) {
	for _, v := range append([]eas.Version{eas.V25, eas.V120}, versions...) {
		for _, cmd := range allCommands {
			t.Run(v.String()+"/"+cmd.String(), func(t *testing.T) {
				a := Block(cmd, v)
				if cmd == eas.CmdOptions {
					if !a.Forward {
						t.Fatalf("OPTIONS not forwarded: %+v", a)
					}
					return
				}
				root, hasRoot := eas.StatusNamespaceRoot(cmd)
				if v < eas.V140 || !hasRoot {
					if a.HTTPStatus != 403 || len(a.Body) != 0 || a.ContentType() != "" {
						t.Fatalf("got %d %x, want bare 403", a.HTTPStatus, a.Body)
					}
					return
				}
				if a.HTTPStatus != 200 || a.ContentType() != ContentTypeWBXML {
					t.Fatalf("got %d %q, want 200 wbxml", a.HTTPStatus, a.ContentType())
				}
				n := decode(t, a.Body)
				if n.Tag != root || len(n.Children) != 1 || n.Children[0].Text != "129" {
					t.Fatalf("body %s, want <%s><Status>129</Status>", xmlOf(t, a.Body), root)
				}
				if n.Children[0].Tag.Page() != root.Page() || n.Children[0].Tag.Name() != "Status" {
					t.Fatalf("status element %s not in the root's namespace", n.Children[0].Tag)
				}
			})
		}
	}
}

// TestBlockVectors checks the exact bytes of PROTOCOL.md §6.1 H.
func TestBlockVectors(t *testing.T) {
	for _, tt := range []struct {
		cmd eas.Command
		hex string
	}{
		{eas.CmdFolderSync, "03016a000007564c0331323900010 1"},
		{eas.CmdSync, "03016a00454e033132390001 01"},
		{eas.CmdPing, "03016a00000d4547033132390001 01"},
		{eas.CmdProvision, "03016a00000e454b033132390001 01"},
		{eas.CmdSettings, "03016a0000124546033132390001 01"},
	} {
		want, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := Block(tt.cmd, eas.V141).Body; !bytes.Equal(got, want) {
			t.Errorf("%s: got % x, want % x", tt.cmd, got, want)
		}
	}
}

// TestDeny checks the per-command denial of a quarantined device.
func TestDeny(t *testing.T) {
	e := newTestEmulator(t, nil)
	want := map[eas.Command]int{
		eas.CmdFolderCreate: 6, eas.CmdFolderUpdate: 6, eas.CmdFolderDelete: 6,
		eas.CmdItemOperations: 3, eas.CmdValidateCert: 17,
	}
	for _, v := range versions {
		for _, cmd := range allCommands {
			switch cmd {
			case eas.CmdOptions, eas.CmdProvision, eas.CmdSettings, eas.CmdFolderSync,
				eas.CmdSync, eas.CmdPing, eas.CmdGetItemEstimate:
				continue
			}
			t.Run(v.String()+"/"+cmd.String(), func(t *testing.T) {
				a := e.Answer(android, Request{Command: cmd, Version: v})
				if a.Forward || a.Outcome != "denied" {
					t.Fatalf("got %+v, want a denial", a)
				}
				status, specific := want[cmd]
				if !specific {
					status = eas.StatusAccessDenied
				}
				root, hasRoot := eas.StatusNamespaceRoot(cmd)
				if !hasRoot || (!specific && v < eas.V140) {
					if a.HTTPStatus != 403 || len(a.Body) != 0 {
						t.Fatalf("got %d %x, want bare 403", a.HTTPStatus, a.Body)
					}
					return
				}
				n := decode(t, a.Body)
				if a.HTTPStatus != 200 || n.Tag != root || n.Children[0].Text != strconv.Itoa(status) {
					t.Fatalf("got %d %s, want 200 <%s> Status %d", a.HTTPStatus, xmlOf(t, a.Body), root, status)
				}
			})
		}
	}
	if e.Len() != 0 {
		t.Errorf("denials created %d records", e.Len())
	}
}

// TestForwarded: OPTIONS, Provision and Settings reach Exchange; protocol
// 2.5 (no quarantine) gets the block answer.
func TestForwarded(t *testing.T) {
	e := newTestEmulator(t, nil)
	for _, v := range versions {
		for _, cmd := range []eas.Command{eas.CmdOptions, eas.CmdProvision, eas.CmdSettings} {
			if a := e.Answer(android, Request{Command: cmd, Version: v}); !a.Forward {
				t.Errorf("%s %s: not forwarded: %+v", v, cmd, a)
			}
		}
	}
	a := e.Answer(android, Request{Command: eas.CmdSync, Version: eas.V25, Body: syncBody([]col{{key: "0", id: "1"}}, 0, 0)})
	if a.HTTPStatus != 403 || len(a.Body) != 0 {
		t.Errorf("2.5 Sync: got %d %x, want 403 (quarantine acts as block)", a.HTTPStatus, a.Body)
	}
	if a := e.Answer(android, Request{Command: eas.CmdOptions, Version: eas.V25}); !a.Forward {
		t.Error("2.5 OPTIONS not forwarded")
	}
}

// phone drives an Emulator like a client that keeps its sync keys.
type phone struct {
	t    *testing.T
	e    *Emulator
	d    Device
	v    eas.Version
	keys map[string]string
	// notices counts the notice Adds seen per collection.
	notices map[string]int
	items   map[string]*node // ServerId → ApplicationData
}

func newPhone(t *testing.T, e *Emulator, v eas.Version) *phone {
	return &phone{t: t, e: e, d: android, v: v, keys: map[string]string{}, notices: map[string]int{}, items: map[string]*node{}}
}

func (p *phone) do(cmd eas.Command, body []byte) Answer {
	return p.e.Answer(p.d, Request{Command: cmd, Version: p.v, Body: body})
}

// hierarchy runs FolderSync 0, which is forwarded, and feeds a CAS answer
// with Inbox 5, Calendar 8 and Outbox 7 to LearnFolderSync.
func (p *phone) hierarchy() {
	p.t.Helper()
	a := p.do(eas.CmdFolderSync, folderSyncRequest("0"))
	if !a.Forward {
		p.t.Fatalf("FolderSync 0 not forwarded: %+v", a)
	}
	resp := eas.AppendFolderSyncResponse(nil, 1, "1", []eas.Folder{
		{ServerID: "8", DisplayName: "Calendar", Type: eas.FolderTypeCalendar},
		{ServerID: "5", DisplayName: "Inbox", Type: eas.FolderTypeInbox},
		{ServerID: "7", DisplayName: "Outbox", Type: eas.FolderTypeOutbox},
	})
	ok, err := p.e.LearnFolderSync([]byte(p.d.User), []byte(p.d.DeviceID), resp)
	if err != nil || !ok {
		p.t.Fatalf("LearnFolderSync: %v %v", ok, err)
	}
}

// sync sends the collections with the phone's keys (0 for new ones) and
// applies the answer; it returns the decoded answer (nil when empty).
func (p *phone) sync(ids []string, bodyTypes []int, cmds map[string][]eas.SyncCommand) (*node, Answer) {
	p.t.Helper()
	var cols []col
	for _, id := range ids {
		k := p.keys[id]
		if k == "" {
			k = "0"
		}
		cols = append(cols, col{key: k, id: id, class: "Email", bodyTypes: bodyTypes, cmds: cmds[id]})
	}
	a := p.do(eas.CmdSync, syncBody(cols, 0, 0))
	if a.HTTPStatus != 200 {
		p.t.Fatalf("Sync: HTTP %d", a.HTTPStatus)
	}
	if len(a.Body) == 0 {
		return nil, a
	}
	n := decode(p.t, a.Body)
	if s := n.text(wbxml.AirSyncStatus); s != "" {
		return n, a
	}
	for _, c := range n.find(wbxml.AirSyncCollections).all(wbxml.AirSyncCollection) {
		id := c.text(wbxml.AirSyncCollectionId)
		switch c.text(wbxml.AirSyncStatus) {
		case "1":
			p.keys[id] = c.text(wbxml.AirSyncSyncKey)
		case "3":
			p.keys[id] = "" // start over
		}
		if cmds := c.find(wbxml.AirSyncCommands); cmds != nil {
			for _, add := range cmds.all(wbxml.AirSyncAdd) {
				p.notices[id]++
				p.items[add.text(wbxml.AirSyncServerId)] = add.find(wbxml.AirSyncApplicationData)
			}
		}
	}
	return n, a
}

func pingFolders(n *node) []string {
	var out []string
	if f := n.find(wbxml.PingFolders); f != nil {
		for _, x := range f.all(wbxml.PingFolder) {
			out = append(out, x.Text)
		}
	}
	return out
}

// TestLifecycle walks a quarantined phone through discovery, the notice
// and the steady state, for each protocol version.
func TestLifecycle(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			st := newMemStore()
			e := newTestEmulator(t, st)
			rec, entered, err := e.Enter(android, "the device is not enrolled")
			if !entered || err != nil {
				t.Fatalf("Enter: %v %v", entered, err)
			}
			if rec.Notice.Subject != "Approve SM-G991B for jdoe@corp.example.com" {
				t.Errorf("subject %q", rec.Notice.Subject)
			}
			p := newPhone(t, e, v)
			p.hierarchy()

			// Ping while the Inbox was never synced: the notice is pending.
			a := p.do(eas.CmdPing, pingBody(480, "5", "8"))
			n := decode(t, a.Body)
			if n.text(wbxml.PingStatus) != "2" || strings.Join(pingFolders(n), ",") != "5" || a.Hold != 0 {
				t.Fatalf("Ping: %s hold %v, want Status 2 with Inbox 5", xmlOf(t, a.Body), a.Hold)
			}

			// Initial sync: new keys, no items.
			n, _ = p.sync([]string{"5", "8"}, []int{2}, nil)
			if len(n.find(wbxml.AirSyncCollections).all(wbxml.AirSyncCollection)) != 2 || len(p.notices) != 0 {
				t.Fatalf("initial sync: %s", xmlOf(t, p.do(eas.CmdSync, nil).Body))
			}
			if !strings.HasPrefix(p.keys["5"], "Qtest-") {
				t.Fatalf("Inbox key %q not issued by easgate", p.keys["5"])
			}

			// GetItemEstimate: 1 for the Inbox (the notice), 0 elsewhere.
			a = p.do(eas.CmdGetItemEstimate, estimateBody(v >= eas.V140, [2]string{p.keys["5"], "5"}, [2]string{p.keys["8"], "8"}, [2]string{"bogus", "9"}))
			n = decode(t, a.Body)
			resp := n.all(wbxml.ItemEstimateResponse)
			if len(resp) != 3 || resp[0].text(wbxml.ItemEstimateCollection, wbxml.ItemEstimateEstimate) != "1" ||
				resp[1].text(wbxml.ItemEstimateCollection, wbxml.ItemEstimateEstimate) != "0" || resp[2].text(wbxml.ItemEstimateStatus) != "4" {
				t.Fatalf("GetItemEstimate: %s", xmlOf(t, a.Body))
			}

			// Second sync: the notice, in the Inbox only.
			n, _ = p.sync([]string{"5", "8"}, []int{2}, nil)
			cols := n.find(wbxml.AirSyncCollections).all(wbxml.AirSyncCollection)
			if len(cols) != 1 || cols[0].text(wbxml.AirSyncCollectionId) != "5" || p.notices["5"] != 1 || p.notices["8"] != 0 {
				t.Fatalf("second sync: %+v notices %v", xmlOf(t, appendSyncResponse(nil, v, nil, &rec)), p.notices)
			}
			item := p.items["5:Qtest"]
			if item == nil || item.text(wbxml.EmailSubject) != rec.Notice.Subject ||
				item.text(wbxml.AirSyncBaseBody, wbxml.AirSyncBaseType) != "2" ||
				!strings.Contains(item.text(wbxml.AirSyncBaseBody, wbxml.AirSyncBaseData), "https://portal.example.com/enroll") {
				t.Fatalf("notice item: %+v", item)
			}
			if r, _ := e.Get([]byte(android.User), []byte(android.DeviceID)); r.NoticeDelivered {
				t.Fatal("notice marked delivered before the phone acknowledged it")
			}

			// Third sync acknowledges the notice: nothing more to say.
			if n, a := p.sync([]string{"5", "8"}, []int{2}, nil); n != nil || len(a.Body) != 0 || a.Hold != 0 {
				t.Fatalf("third sync: want an empty response, got %x", a.Body)
			}
			if r, _ := e.Get([]byte(android.User), []byte(android.DeviceID)); !r.NoticeDelivered {
				t.Fatal("notice not delivered after the acknowledgement")
			}
			if p.notices["5"] != 1 {
				t.Fatalf("notice seen %d times", p.notices["5"])
			}

			// Ping now holds for the heartbeat and answers Status 1; if the
			// device is released meanwhile, Status 2 with every folder.
			a = p.do(eas.CmdPing, pingBody(480, "5", "8"))
			if a.Hold != 480*time.Second || decode(t, a.Body).text(wbxml.PingStatus) != "1" {
				t.Fatalf("Ping after delivery: hold %v body %s", a.Hold, xmlOf(t, a.Body))
			}
			if rb := decode(t, a.ReleaseBody); rb.text(wbxml.PingStatus) != "2" || strings.Join(pingFolders(rb), ",") != "5,8" {
				t.Fatalf("release body %s", xmlOf(t, a.ReleaseBody))
			}
			// An empty Ping reuses the cached interval and folders.
			if a := p.do(eas.CmdPing, nil); a.Hold != 480*time.Second {
				t.Fatalf("empty Ping: %+v", a)
			}
			// A Sync with Wait and nothing to report is held.
			body := syncBody([]col{{key: p.keys["5"], id: "5"}, {key: p.keys["8"], id: "8"}}, 5, 0)
			if a := p.do(eas.CmdSync, body); a.Hold != 5*time.Minute || len(a.Body) != 0 || a.HTTPStatus != 200 {
				t.Fatalf("Sync Wait 5: %+v", a)
			}
			// ... and so is an empty Sync, which reuses that request.
			if a := p.do(eas.CmdSync, nil); a.Hold != 5*time.Minute || len(a.Body) != 0 {
				t.Fatalf("empty Sync: %+v", a)
			}
			if p.notices["5"] != 1 {
				t.Fatalf("notice seen %d times", p.notices["5"])
			}

			// A key easgate never issued: Status 3.
			n = decode(t, p.do(eas.CmdSync, syncBody([]col{{key: "1234567", id: "5"}}, 0, 0)).Body)
			c := n.find(wbxml.AirSyncCollections, wbxml.AirSyncCollection)
			if c.text(wbxml.AirSyncStatus) != "3" || c.text(wbxml.AirSyncSyncKey) != "0" {
				t.Fatalf("unknown key: %+v", c)
			}

			// Persisted: a restart keeps the state, so nothing is re-sent.
			if err := e.Flush(); err != nil {
				t.Fatal(err)
			}
			e2 := newTestEmulator(t, st)
			if err := e2.Load(); err != nil {
				t.Fatal(err)
			}
			p.e = e2
			if n, a := p.sync([]string{"5", "8"}, []int{2}, nil); n != nil || len(a.Body) != 0 {
				t.Fatalf("after restart: %s", xmlOf(t, a.Body))
			}
			if a := p.do(eas.CmdPing, pingBody(480, "5")); a.Hold == 0 {
				t.Fatalf("after restart Ping not held: %s", xmlOf(t, a.Body))
			}
			// Released: the record goes, from the store too.
			if !e2.Release([]byte(android.User), []byte(android.DeviceID)) || e2.Active([]byte(android.User), []byte(android.DeviceID)) {
				t.Fatal("Release")
			}
			if err := e2.Flush(); err != nil || st.len(Bucket) != 0 {
				t.Fatalf("store after release: %d records, %v", st.len(Bucket), err)
			}
		})
	}
}

// TestRetry: a phone that lost the answer carrying the notice sends the
// previous key again and gets the same answer.
func TestRetry(t *testing.T) {
	e := newTestEmulator(t, nil)
	p := newPhone(t, e, eas.V141)
	p.hierarchy()
	p.sync([]string{"5"}, nil, nil)
	k1 := p.keys["5"]
	first := p.do(eas.CmdSync, syncBody([]col{{key: k1, id: "5"}}, 0, 0))
	again := p.do(eas.CmdSync, syncBody([]col{{key: k1, id: "5"}}, 0, 0))
	if !bytes.Equal(first.Body, again.Body) || decode(t, again.Body).find(wbxml.AirSyncCollections, wbxml.AirSyncCollection, wbxml.AirSyncCommands) == nil {
		t.Fatalf("retry differs:\n%s\n%s", xmlOf(t, first.Body), xmlOf(t, again.Body))
	}
	// Restarting the Inbox from 0 drops the notice on the phone; it comes
	// again.
	p.keys["5"] = ""
	p.sync([]string{"5"}, nil, nil)
	p.sync([]string{"5"}, nil, nil)
	if p.notices["5"] != 1 {
		t.Fatalf("notices %d", p.notices["5"])
	}
}

// TestClientChanges: nothing the phone changes is acknowledged as saved.
func TestClientChanges(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			e := newTestEmulator(t, nil)
			p := newPhone(t, e, v)
			p.hierarchy()
			p.sync([]string{"5", "7"}, []int{1}, nil)
			p.sync([]string{"5", "7"}, []int{1}, nil) // the notice
			n, _ := p.sync([]string{"5", "7"}, nil, map[string][]eas.SyncCommand{
				"5": {
					{Kind: eas.SyncChange, ID: "5:Qtest"}, // mark the notice read: fine
					{Kind: eas.SyncChange, ID: "5:9999"},  // not saved
					{Kind: eas.SyncDelete, ID: "5:1"},     // not saved
					{Kind: eas.SyncFetch, ID: "5:Qtest"},  // the notice
					{Kind: eas.SyncFetch, ID: "5:1"},      // no such item
					{Kind: eas.SyncAdd, ID: "c1", Class: "Email"},
				},
				"7": {{Kind: eas.SyncAdd, ID: "draft-1"}},
			})
			got := map[string]string{}
			for _, c := range n.find(wbxml.AirSyncCollections).all(wbxml.AirSyncCollection) {
				if c.text(wbxml.AirSyncStatus) != "1" {
					t.Fatalf("collection status %s", xmlOf(t, p.do(eas.CmdSync, nil).Body))
				}
				for _, r := range c.find(wbxml.AirSyncResponses).Children {
					id := r.text(wbxml.AirSyncServerId) + r.text(wbxml.AirSyncClientId)
					got[r.Tag.Name()+" "+id] = r.text(wbxml.AirSyncStatus)
					if r.Tag == wbxml.AirSyncFetch && r.text(wbxml.AirSyncStatus) == "1" &&
						r.text(wbxml.AirSyncApplicationData, wbxml.EmailSubject) == "" {
						t.Error("Fetch of the notice without its data")
					}
					if r.Tag == wbxml.AirSyncAdd && r.text(wbxml.AirSyncServerId) != "" {
						t.Error("a refused Add got a ServerId")
					}
				}
			}
			want := map[string]string{
				"Change 5:9999": "6", "Delete 5:1": "6", "Fetch 5:Qtest": "1", "Fetch 5:1": "8",
				"Add c1": "6", "Add draft-1": "6",
			}
			if len(got) != len(want) {
				t.Fatalf("responses %v, want %v", got, want)
			}
			for k, s := range want {
				if got[k] != s {
					t.Errorf("%s: status %q, want %s", k, got[k], s)
				}
			}
		})
	}
}

// TestUnknownInbox: while the Inbox is not known the phone is steered to a
// full FolderSync, whose answer names it.
func TestUnknownInbox(t *testing.T) {
	e := newTestEmulator(t, nil)
	e.Enter(android, "")
	p := newPhone(t, e, eas.V140)
	if n := decode(t, p.do(eas.CmdSync, syncBody([]col{{key: "0", id: "5"}}, 0, 0)).Body); n.text(wbxml.AirSyncStatus) != "12" {
		t.Errorf("Sync: status %q, want 12", n.text(wbxml.AirSyncStatus))
	}
	if n := decode(t, p.do(eas.CmdPing, pingBody(300, "5")).Body); n.text(wbxml.PingStatus) != "7" {
		t.Errorf("Ping: status %q, want 7", n.text(wbxml.PingStatus))
	}
	a := p.do(eas.CmdFolderSync, folderSyncRequest("{a7b9}3"))
	if a.Forward || decode(t, a.Body).text(wbxml.FolderHierarchyStatus) != "9" {
		t.Fatalf("FolderSync with an old key: %+v", a)
	}
	p.hierarchy()
	if a := p.do(eas.CmdFolderSync, folderSyncRequest("1")); !a.Forward {
		t.Fatal("FolderSync not forwarded once the Inbox is known")
	}
	// A hierarchy without an Inbox: stop steering after the full answer.
	e2 := newTestEmulator(t, nil)
	p2 := newPhone(t, e2, eas.V140)
	p2.do(eas.CmdFolderSync, folderSyncRequest("0"))
	resp := eas.AppendFolderSyncResponse(nil, 1, "1", []eas.Folder{{ServerID: "8", DisplayName: "Calendar", Type: eas.FolderTypeCalendar}})
	if ok, err := e2.LearnFolderSync([]byte(android.User), []byte(android.DeviceID), resp); ok || err != nil {
		t.Fatalf("LearnFolderSync without Inbox: %v %v", ok, err)
	}
	if a := p2.do(eas.CmdPing, pingBody(300, "8")); a.Hold != 300*time.Second {
		t.Fatalf("Ping after a hierarchy without Inbox: %+v", a)
	}
	if _, err := e2.LearnFolderSync([]byte(android.User), []byte(android.DeviceID), []byte{3, 1, 0x6a}); err == nil {
		t.Error("LearnFolderSync accepted a truncated body")
	}
}

// TestRequestErrors: malformed and out-of-range requests get the protocol's
// status values, never a panic.
func TestRequestErrors(t *testing.T) {
	e := newTestEmulator(t, nil)
	p := newPhone(t, e, eas.V141)
	p.hierarchy()
	for _, tt := range []struct {
		name   string
		cmd    eas.Command
		body   []byte
		path   []wbxml.Tag
		status string
		limit  string
	}{
		{"sync garbage", eas.CmdSync, []byte{3, 1, 0x6a, 0, 0x45, 0x99}, []wbxml.Tag{wbxml.AirSyncStatus}, "4", ""},
		{"sync wrong root", eas.CmdSync, pingBody(60, "5"), []wbxml.Tag{wbxml.AirSyncStatus}, "4", ""},
		{"sync wait+heartbeat", eas.CmdSync, syncBody([]col{{key: "0", id: "5"}}, 5, 300), []wbxml.Tag{wbxml.AirSyncStatus}, "4", ""},
		{"sync wait 60", eas.CmdSync, syncBody([]col{{key: "0", id: "5"}}, 60, 0), []wbxml.Tag{wbxml.AirSyncStatus}, "14", "59"},
		{"sync heartbeat 30", eas.CmdSync, syncBody([]col{{key: "0", id: "5"}}, 0, 30), []wbxml.Tag{wbxml.AirSyncStatus}, "14", "60"},
		{"sync empty, nothing cached", eas.CmdSync, nil, []wbxml.Tag{wbxml.AirSyncStatus}, "13", ""},
		{"ping garbage", eas.CmdPing, []byte{3, 1, 0x6a, 0, 0, 13, 0x45}, []wbxml.Tag{wbxml.PingStatus}, "4", ""},
		{"ping empty, nothing cached", eas.CmdPing, nil, []wbxml.Tag{wbxml.PingStatus}, "3", ""},
		{"ping heartbeat 30", eas.CmdPing, pingBody(30, "5"), []wbxml.Tag{wbxml.PingStatus}, "5", "60"},
		{"ping heartbeat 4000", eas.CmdPing, pingBody(4000, "5"), []wbxml.Tag{wbxml.PingStatus}, "5", "3540"},
		{"estimate empty", eas.CmdGetItemEstimate, nil, []wbxml.Tag{wbxml.ItemEstimateStatus}, "102", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := p.do(tt.cmd, tt.body)
			if a.HTTPStatus != 200 || a.Hold != 0 {
				t.Fatalf("got %+v", a)
			}
			n := decode(t, a.Body)
			if got := n.text(tt.path...); got != tt.status {
				t.Fatalf("status %q, want %s: %s", got, tt.status, xmlOf(t, a.Body))
			}
			if tt.limit != "" {
				lim := n.text(wbxml.AirSyncLimit) + n.text(wbxml.PingHeartbeatInterval)
				if lim != tt.limit {
					t.Errorf("limit %q, want %s", lim, tt.limit)
				}
			}
		})
	}
	var folders []string
	for i := 0; i < 301; i++ {
		folders = append(folders, strconv.Itoa(i))
	}
	n := decode(t, p.do(eas.CmdPing, pingBody(300, folders...)).Body)
	if n.text(wbxml.PingStatus) != "6" || n.text(wbxml.PingMaxFolders) != "300" {
		t.Errorf("too many folders: %+v", n)
	}
	// 12.1 has no common status: a malformed GetItemEstimate is HTTP 400.
	p.v = eas.V121
	if a := p.do(eas.CmdGetItemEstimate, []byte{1}); a.HTTPStatus != 400 || len(a.Body) != 0 {
		t.Errorf("12.1 malformed GetItemEstimate: %+v", a)
	}
}

// TestGolden compares whole answers with testdata/*.golden (XML form).
func TestGolden(t *testing.T) {
	e := newTestEmulator(t, nil)
	e.Enter(android, "the device is not enrolled in Intune")
	cases := []struct {
		name string
		v    eas.Version
		body func(p *phone) []byte
	}{
		{"sync-notice-html-14.1", eas.V141, func(p *phone) []byte {
			p.hierarchy()
			p.sync([]string{"5", "8"}, []int{1, 2}, nil)
			return p.do(eas.CmdSync, syncBody([]col{{key: p.keys["5"], id: "5", bodyTypes: []int{1, 2}}, {key: p.keys["8"], id: "8"}}, 0, 0)).Body
		}},
		{"sync-notice-text-12.1", eas.V121, func(p *phone) []byte {
			p.d.DeviceID = "v121device"
			e.Enter(p.d, "the device is not enrolled in Intune")
			p.hierarchy()
			p.sync([]string{"5"}, nil, nil)
			return p.do(eas.CmdSync, syncBody([]col{{key: p.keys["5"], id: "5", class: "Email"}}, 0, 0)).Body
		}},
		{"ping-notice-16.1", eas.V161, func(p *phone) []byte {
			p.d.DeviceID = "v161device"
			p.hierarchy()
			return p.do(eas.CmdPing, pingBody(900, "5", "8")).Body
		}},
		{"block-foldersync-14.1", eas.V141, func(p *phone) []byte { return Block(eas.CmdFolderSync, eas.V141).Body }},
		{"deny-sendmail-16.1", eas.V161, func(p *phone) []byte { return Deny(eas.CmdSendMail, eas.V161).Body }},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			p := newPhone(t, e, tt.v)
			got := xmlOf(t, tt.body(p))
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("answer differs from %s:\n%s", path, got)
			}
		})
	}
}

// TestActiveAllocs: the per-request check allocates nothing.
func TestActiveAllocs(t *testing.T) {
	e := newTestEmulator(t, nil)
	e.Enter(android, "")
	user, dev, other := []byte("JDoe@corp.example.com"), []byte(android.DeviceID), []byte("other")
	if !e.Active(user, dev) || e.Active(user, other) {
		t.Fatal("Active is wrong")
	}
	if n := testing.AllocsPerRun(100, func() { e.Active(user, dev); e.Active(user, other) }); n != 0 {
		t.Errorf("Active allocates %v times", n)
	}
}

func BenchmarkActive(b *testing.B) {
	e := newTestEmulator(b, nil)
	e.Enter(android, "")
	user, dev := []byte(android.User), []byte(android.DeviceID)
	b.ReportAllocs()
	for b.Loop() {
		e.Active(user, dev)
	}
}

func BenchmarkSyncSteadyState(b *testing.B) {
	e := newTestEmulator(b, nil)
	e.Enter(android, "")
	t := &testing.T{}
	p := newPhone(t, e, eas.V141)
	p.hierarchy()
	p.sync([]string{"5", "8"}, nil, nil)
	p.sync([]string{"5", "8"}, nil, nil)
	p.sync([]string{"5", "8"}, nil, nil)
	body := syncBody([]col{{key: p.keys["5"], id: "5"}, {key: p.keys["8"], id: "8"}}, 0, 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		a := e.Answer(android, Request{Command: eas.CmdSync, Version: eas.V141, Body: body})
		if len(a.Body) != 0 {
			b.Fatal("not steady")
		}
	}
}

// TestSettings: Settings is forwarded unless it would change the mailbox.
func TestSettings(t *testing.T) {
	e := newTestEmulator(t, nil)
	body := settingsBody
	for _, v := range versions {
		if a := e.Answer(android, Request{Command: eas.CmdSettings, Version: v, Body: body(wbxml.SettingsDeviceInformation)}); !a.Forward {
			t.Errorf("%s DeviceInformation not forwarded", v)
		}
		if a := e.Answer(android, Request{Command: eas.CmdSettings, Version: v, Body: []byte{3, 1}}); !a.Forward {
			t.Errorf("%s unreadable Settings not forwarded", v)
		}
		a := e.Answer(android, Request{Command: eas.CmdSettings, Version: v, Body: body(wbxml.SettingsDeviceInformation, wbxml.SettingsOof)})
		if a.Forward || a.HTTPStatus != 200 {
			t.Fatalf("%s Oof forwarded", v)
		}
		n := decode(t, a.Body)
		if n.text(wbxml.SettingsStatus) != "1" || n.text(wbxml.SettingsDeviceInformation, wbxml.SettingsStatus) != "1" ||
			n.text(wbxml.SettingsOof, wbxml.SettingsStatus) != "7" {
			t.Errorf("%s Oof answer %s", v, xmlOf(t, a.Body))
		}
	}
}
