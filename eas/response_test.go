package eas

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/eas/wbxml"
)

// TestAppendStatusBodyVectorH checks every vector H of PROTOCOL.md §6.1
// byte for byte, plus vector G (Ping Status 1).
func TestAppendStatusBodyVectorH(t *testing.T) {
	tests := []struct {
		cmd    Command
		status int
		hex    string
	}{
		{CmdFolderSync, 129, "03 01 6A 00 00 07 56 4C 03 31 32 39 00 01 01"},
		{CmdSync, 129, "03 01 6A 00 45 4E 03 31 32 39 00 01 01"},
		{CmdPing, 129, "03 01 6A 00 00 0D 45 47 03 31 32 39 00 01 01"},
		{CmdProvision, 129, "03 01 6A 00 00 0E 45 4B 03 31 32 39 00 01 01"},
		{CmdSettings, 129, "03 01 6A 00 00 12 45 46 03 31 32 39 00 01 01"},
		{CmdFolderSync, 142, "03 01 6A 00 00 07 56 4C 03 31 34 32 00 01 01"},
		{CmdPing, 1, "03 01 6A 00 00 0D 45 47 03 31 00 01 01"},
	}
	for _, tc := range tests {
		t.Run(tc.cmd.String()+"/"+strconv.Itoa(tc.status), func(t *testing.T) {
			prefix := []byte("keep")
			got, ok := AppendStatusBody(prefix, tc.cmd, tc.status)
			if !ok {
				t.Fatal("ok = false")
			}
			if !bytes.Equal(got[:4], []byte("keep")) {
				t.Fatal("prefix not kept")
			}
			if want := bodyHex(t, tc.hex); !bytes.Equal(got[4:], want) {
				t.Fatalf("got  %s\nwant %s", bodyHexDump(got[4:]), bodyHexDump(want))
			}
		})
	}
}

func TestStatusNamespaceRoot(t *testing.T) {
	tests := []struct {
		cmd  Command
		root wbxml.Tag
	}{
		{CmdSync, wbxml.AirSyncSync},
		{CmdFolderSync, wbxml.FolderHierarchyFolderSync},
		{CmdFolderCreate, wbxml.FolderHierarchyFolderCreate},
		{CmdFolderDelete, wbxml.FolderHierarchyFolderDelete},
		{CmdFolderUpdate, wbxml.FolderHierarchyFolderUpdate},
		{CmdPing, wbxml.PingPing},
		{CmdProvision, wbxml.ProvisionProvision},
		{CmdSettings, wbxml.SettingsSettings},
		{CmdGetItemEstimate, wbxml.ItemEstimateGetItemEstimate},
		{CmdMoveItems, wbxml.MoveMoveItems},
		{CmdMeetingResponse, wbxml.MeetingResponseMeetingResponse},
		{CmdSearch, wbxml.SearchSearch},
		{CmdItemOperations, wbxml.ItemOperationsItemOperations},
		{CmdResolveRecipients, wbxml.ResolveRecipientsResolveRecipients},
		{CmdValidateCert, wbxml.ValidateCertValidateCert},
		{CmdSendMail, wbxml.ComposeMailSendMail},
		{CmdSmartReply, wbxml.ComposeMailSmartReply},
		{CmdSmartForward, wbxml.ComposeMailSmartForward},
		{CmdFind, wbxml.FindFind},
		{CmdGetAttachment, 0},
		{CmdGetHierarchy, 0},
		{CmdNotify, 0},
		{CmdOptions, 0},
		{CmdUnknown, 0},
	}
	for _, tc := range tests {
		root, ok := StatusNamespaceRoot(tc.cmd)
		if root != tc.root || ok != (tc.root != 0) {
			t.Errorf("%v: got %v, %v; want %v", tc.cmd, root, ok, tc.root)
		}
		if tc.root == 0 {
			if b, ok := AppendStatusBody(nil, tc.cmd, 129); ok || len(b) != 0 {
				t.Errorf("%v: AppendStatusBody wrote % X", tc.cmd, b)
			}
			continue
		}
		// The body decodes to <Root><Status>129</Status></Root> with the
		// Status of the root's own namespace.
		b, ok := AppendStatusBody(nil, tc.cmd, 129)
		if !ok {
			t.Fatalf("%v: ok=false", tc.cmd)
		}
		tree, err := bodyDump(b)
		if err != nil {
			t.Fatalf("%v: %v", tc.cmd, err)
		}
		ns := tc.root.Namespace()
		want := ns + ":" + tc.root.Name() + "\n  " + ns + ":Status\n    \"129\"\n"
		if tree != want {
			t.Errorf("%v: tree\n%s\nwant\n%s", tc.cmd, tree, want)
		}
	}
}

func TestChooseErrorAnswer(t *testing.T) {
	const (
		http403 = 403
		http449 = 449
	)
	body := func(c int) ErrorAnswer { return ErrorAnswer{HTTPStatus: 200, Body: true, Status: c} }
	code := func(h int) ErrorAnswer { return ErrorAnswer{HTTPStatus: h} }
	tests := []struct {
		v      Version
		cmd    Command
		common int
		http   int
		want   ErrorAnswer
	}{
		// Below 14.0: never a common status body.
		{V25, CmdSync, 129, http403, code(403)},
		{V120, CmdFolderSync, 129, http403, code(403)},
		{V121, CmdPing, 129, http403, code(403)},
		{V121, CmdFolderSync, 142, http449, code(449)},
		{V121, CmdProvision, 165, http403, code(403)},
		{0, CmdSync, 129, http403, code(403)}, // version not stated
		// 14.0: codes up to 163.
		{V140, CmdFolderSync, 129, http403, body(129)},
		{V140, CmdFolderSync, 142, http449, body(142)},
		{V140, CmdProvision, 165, http403, code(403)},
		{V140, CmdSync, 177, http403, code(403)},
		{V140, CmdSync, 185, http403, code(403)},
		{V140, CmdSync, 163, http403, body(163)},
		{V140, CmdSync, 164, http403, code(403)},
		// 14.1: up to 177.
		{V141, CmdPing, 129, http403, body(129)},
		{V141, CmdSync, 142, http449, body(142)},
		{V141, CmdProvision, 165, http403, body(165)},
		{V141, CmdSync, 177, http403, body(177)},
		{V141, CmdSync, 178, http403, code(403)},
		{V141, CmdSync, 185, http403, code(403)},
		// 16.0: up to 185.
		{V160, CmdSettings, 129, http403, body(129)},
		{V160, CmdFolderSync, 142, http449, body(142)},
		{V160, CmdProvision, 165, http403, body(165)},
		{V160, CmdSync, 177, http403, body(177)},
		{V160, CmdSync, 185, http403, body(185)},
		{V160, CmdSync, 186, http403, code(403)},
		// 16.1: any code.
		{V161, CmdSync, 129, http403, body(129)},
		{V161, CmdFolderSync, 142, http449, body(142)},
		{V161, CmdProvision, 165, http403, body(165)},
		{V161, CmdSync, 177, http403, body(177)},
		{V161, CmdSync, 185, http403, body(185)},
		{V161, CmdFind, 190, http403, body(190)},
		// No XML root: always the HTTP code.
		{V161, CmdGetAttachment, 129, http403, code(403)},
		{V141, CmdGetAttachment, 142, http449, code(449)},
		{V121, CmdGetAttachment, 129, http403, code(403)},
		{V161, CmdUnknown, 129, http403, code(403)},
		// Redirects never carry a body.
		{V161, CmdSync, 129, 451, code(451)},
		{V141, CmdFolderSync, 129, 441, code(441)},
		// No common status.
		{V161, CmdSync, 0, 503, code(503)},
		{V141, CmdSync, -1, 400, code(400)},
		// Versions between published ones.
		{150, CmdSync, 129, http403, code(403)},
	}
	for _, tc := range tests {
		got := ChooseErrorAnswer(tc.v, tc.cmd, tc.common, tc.http)
		if got != tc.want {
			t.Errorf("ChooseErrorAnswer(%v, %v, %d, %d) = %+v, want %+v", tc.v, tc.cmd, tc.common, tc.http, got, tc.want)
		}
		status, b := AppendErrorAnswer(nil, tc.v, tc.cmd, tc.common, tc.http)
		if status != tc.want.HTTPStatus {
			t.Errorf("AppendErrorAnswer status %d, want %d", status, tc.want.HTTPStatus)
		}
		if !tc.want.Body {
			if len(b) != 0 {
				t.Errorf("AppendErrorAnswer wrote a body for an HTTP answer: % X", b)
			}
			continue
		}
		want, _ := AppendStatusBody(nil, tc.cmd, tc.want.Status)
		if !bytes.Equal(b, want) {
			t.Errorf("AppendErrorAnswer body % X, want % X", b, want)
		}
	}
}

func TestStatusText(t *testing.T) {
	tests := map[int]string{
		101: "InvalidContent", 108: "DeviceIdMissingOrInvalid", 126: "UserDisabledForSync",
		129: "DeviceIsBlockedForThisUser", 130: "AccessDenied", 131: "AccountDisabled", 140: "RemoteWipeRequested",
		141: "LegacyDeviceOnStrictPolicy", 142: "DeviceNotProvisioned", 143: "PolicyRefresh", 144: "InvalidPolicyKey",
		145: "ExternallyManagedDevicesNotAllowed", 163: "AvailabilityFailure", 165: "DeviceInformationRequired",
		177: "MaximumDevicesReached", 178: "InvalidMimeBodyCombination", 183: "InvalidRecipients",
		157: "", 180: "", 185: "", 100: "", 0: "", -5: "", 1000: "",
	}
	for code, want := range tests {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
	// Every named code from 101 to 184 has a name, and constants agree.
	named := 0
	for c := 101; c <= 185; c++ {
		if StatusText(c) != "" {
			named++
		}
	}
	if named != 78 {
		t.Errorf("%d named codes, want 78", named)
	}
}

// TestResponseAllocs proves the block path allocates nothing once the
// buffer has room.
func TestResponseAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(200, func() {
		b, ok := AppendStatusBody(buf[:0], CmdFolderSync, StatusDeviceIsBlockedForThisUser)
		if !ok || len(b) != 15 {
			t.Fatal(len(b))
		}
	}); n != 0 {
		t.Errorf("AppendStatusBody: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() {
		s, b := AppendErrorAnswer(buf[:0], V141, CmdSync, StatusDeviceIsBlockedForThisUser, 403)
		if s != 200 || len(b) != 13 {
			t.Fatal(s, len(b))
		}
	}); n != 0 {
		t.Errorf("AppendErrorAnswer: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() { _ = ChooseErrorAnswer(V121, CmdPing, 129, 403) }); n != 0 {
		t.Errorf("ChooseErrorAnswer: %v allocs, want 0", n)
	}
}

var respNoticeTime = time.Date(2026, 11, 27, 9, 30, 5, 123456789, time.FixedZone("CET", 3600))

func respNotice() EmailItem {
	return EmailItem{
		ServerID:     "5:1",
		From:         `"IT Service Desk" <it@example.com>`,
		To:           `"Jane Doe" <jdoe@example.com>`,
		Subject:      "Your phone is waiting for approval",
		DateReceived: respNoticeTime,
		HTMLBody:     "<p>Your device is <b>quarantined</b> until IT approves it.</p>",
		TextBody:     "Your device is quarantined until IT approves it.",
	}
}

func TestSyntheticResponsesGolden(t *testing.T) {
	inbox := []SyncCollectionResponse{
		{Class: "Email", SyncKey: "2", CollectionID: "5", Adds: []EmailItem{respNotice()}},
		{Class: "Calendar", SyncKey: "7", CollectionID: "1"},
	}
	tests := []struct {
		name string
		got  []byte
	}{
		{"sync_response_141_html.golden", AppendSyncResponse(nil, V141, inbox, BodyTypeHTML)},
		{"sync_response_121_text.golden", AppendSyncResponse(nil, V121, inbox, BodyTypeText)},
		{"sync_response_25.golden", AppendSyncResponse(nil, V25, inbox, BodyTypeHTML)},
		{"sync_response_160_mime.golden", AppendSyncResponse(nil, V160, inbox[:1], BodyTypeMIME)},
		{"sync_response_moreavailable.golden", AppendSyncResponse(nil, V161, []SyncCollectionResponse{
			{SyncKey: "3", CollectionID: "5", Status: 1, MoreAvailable: true}}, BodyTypeHTML)},
		{"foldersync_response.golden", AppendFolderSyncResponse(nil, 1, "1", []Folder{
			{ServerID: "1", DisplayName: "Calendar", Type: FolderTypeCalendar},
			{ServerID: "5", ParentID: "0", DisplayName: "Inbox", Type: FolderTypeInbox},
			{ServerID: "11", ParentID: "5", DisplayName: "Ärger", Type: FolderTypeUserMail}})},
		{"foldersync_response_status9.golden", AppendFolderSyncResponse(nil, 9, "ignored", nil)},
		{"ping_response_changes.golden", AppendPingResponse(nil, PingStatusChanges, []string{"5"})},
		{"ping_response_expired.golden", AppendPingResponse(nil, PingStatusExpired, nil)},
		{"getitemestimate_response.golden", AppendGetItemEstimateResponse(nil, []Estimate{
			{CollectionID: "5", Count: 1}, {CollectionID: "1", Count: 0, Status: 1}, {CollectionID: "99", Status: 2}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { bodyGolden(t, tc.name, tc.got) })
	}
	// Ping status 1 is exactly vector G.
	if g := AppendPingResponse(nil, 1, []string{"ignored"}); !bytes.Equal(g, bodyHex(t, "03 01 6A 00 00 0D 45 47 03 31 00 01 01")) {
		t.Errorf("Ping status 1: % X", g)
	}
}

// respTree decodes a body into path → values ("AirSync:Sync/AirSync:Collections/..."),
// for checking fields independently of the golden files.
func respTree(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	d := wbxml.NewDecoder(b)
	out := map[string][]string{}
	var path []string
	for {
		tok, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		switch tok.Kind {
		case wbxml.StartTag:
			p := strings.Join(append(path, tok.Tag.String()), "/")
			if !tok.HasContent {
				out[p] = append(out[p], "")
				continue
			}
			path = append(path, tok.Tag.String())
		case wbxml.EndTag:
			path = path[:len(path)-1]
		case wbxml.Text:
			p := strings.Join(path, "/")
			out[p] = append(out[p], string(tok.Data))
		}
	}
}

func TestAppendSyncResponseDecodes(t *testing.T) {
	cols := []SyncCollectionResponse{
		{Class: "Email", SyncKey: "2", CollectionID: "5", Adds: []EmailItem{respNotice()}, MoreAvailable: true},
		{Class: "Contacts", SyncKey: "9", CollectionID: "2", Status: 1},
	}
	for _, v := range []Version{V25, V120, V121, V140, V141, V160, V161} {
		for _, bt := range []int{BodyTypeText, BodyTypeHTML, BodyTypeMIME, BodyTypeRTF} {
			b := AppendSyncResponse(nil, v, cols, bt)
			// Our own reader sees the collections.
			var s SyncInfo
			if err := ReadSync(b, &s); err != nil {
				t.Fatalf("%v/%d: ReadSync: %v", v, bt, err)
			}
			wantClass := "Email"
			if v >= V140 {
				wantClass = ""
			}
			// A server Add carries a ServerId, so it reads with an empty ID.
			if len(s.Collections) != 2 || !reflect.DeepEqual(s.Collections[0], SyncCollection{SyncKey: "2", CollectionID: "5", Class: wantClass,
				HasCommands: true, Commands: []SyncCommand{{Kind: SyncAdd}}, Status: 1, MoreAvailable: true}) ||
				s.Collections[1].HasCommands || s.Collections[1].CollectionID != "2" {
				t.Fatalf("%v/%d: %+v", v, bt, s.Collections)
			}
			// And the item fields are where the schemas put them.
			tree := respTree(t, b)
			app := "AirSync:Sync/AirSync:Collections/AirSync:Collection/AirSync:Commands/AirSync:Add/AirSync:ApplicationData/"
			for k, want := range map[string]string{
				"Email:From":         `"IT Service Desk" <it@example.com>`,
				"Email:To":           `"Jane Doe" <jdoe@example.com>`,
				"Email:Subject":      "Your phone is waiting for approval",
				"Email:DateReceived": "2026-11-27T08:30:05.123Z",
				"Email:Read":         "0",
				"Email:MessageClass": "IPM.Note",
			} {
				if got := tree[app+k]; len(got) != 1 || got[0] != want {
					t.Errorf("%v/%d: %s = %q, want %q", v, bt, k, got, want)
				}
			}
			if v < V120 {
				if got := tree[app+"Email:Body"]; len(got) != 1 || got[0] != respNotice().TextBody {
					t.Errorf("%v: Email:Body = %q", v, got)
				}
				if _, ok := tree[app+"AirSyncBase:Body/AirSyncBase:Data"]; ok {
					t.Errorf("%v: AirSyncBase in a 2.5 response", v)
				}
				continue
			}
			typ := tree[app+"AirSyncBase:Body/AirSyncBase:Type"]
			data := tree[app+"AirSyncBase:Body/AirSyncBase:Data"]
			size := tree[app+"AirSyncBase:Body/AirSyncBase:EstimatedDataSize"]
			if len(typ) != 1 || len(data) != 1 || len(size) != 1 || size[0] != strconv.Itoa(len(data[0])) {
				t.Fatalf("%v/%d: body type=%q size=%q data=%q", v, bt, typ, size, data)
			}
			switch bt {
			case BodyTypeHTML:
				if typ[0] != "2" || data[0] != respNotice().HTMLBody {
					t.Errorf("%v: HTML body %q %q", v, typ, data)
				}
			case BodyTypeMIME:
				if typ[0] != "4" || !strings.Contains(data[0], "Content-Type: text/html; charset=\"utf-8\"\r\n") ||
					!strings.Contains(data[0], "Subject: Your phone is waiting for approval\r\n") {
					t.Errorf("%v: MIME body %q", v, data[0])
				}
			default: // text, and RTF falls back to text
				if typ[0] != "1" || data[0] != respNotice().TextBody {
					t.Errorf("%v/%d: text body %q %q", v, bt, typ, data)
				}
			}
		}
	}
}

func TestAppendSyncResponseSanitizes(t *testing.T) {
	m := respNotice()
	m.Subject = "bad\x00subject\xff"
	m.From = "evil\r\nBcc: x@example.com"
	m.HTMLBody = ""
	b := AppendSyncResponse(nil, V161, []SyncCollectionResponse{{SyncKey: "1\x00", CollectionID: "5", Adds: []EmailItem{m}}}, BodyTypeMIME)
	tree := respTree(t, b)
	app := "AirSync:Sync/AirSync:Collections/AirSync:Collection/AirSync:Commands/AirSync:Add/AirSync:ApplicationData/"
	if got := tree[app+"Email:Subject"]; len(got) != 1 || got[0] != "badsubject\uFFFD" {
		t.Fatalf("subject %q", got)
	}
	mimeBody := tree[app+"AirSyncBase:Body/AirSyncBase:Data"][0]
	if strings.Contains(mimeBody, "\r\nBcc:") || !strings.Contains(mimeBody, "Content-Type: text/plain") {
		t.Fatalf("MIME header injection or wrong type:\n%s", mimeBody)
	}
}

func TestSyntheticResponsesReadBack(t *testing.T) {
	fs := AppendFolderSyncResponse(nil, 1, "1", []Folder{{ServerID: "5", DisplayName: "Inbox", Type: FolderTypeInbox},
		{ServerID: "6", ParentID: "5", DisplayName: "Sub", Type: FolderTypeUserMail}})
	var info FolderSyncInfo
	if err := ReadFolderSync(fs, &info); err != nil {
		t.Fatal(err)
	}
	if inbox, ok := info.Inbox(); !ok || inbox != (Folder{"5", "0", "Inbox", 2}) || info.Count != 2 || info.SyncKey != "1" {
		t.Fatalf("%+v", info)
	}
	var p PingInfo
	if err := ReadPing(AppendPingResponse(nil, PingStatusChanges, []string{"5", "9"}), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != 2 || len(p.Folders) != 2 || p.Folders[1].ID != "9" {
		t.Fatalf("%+v", p)
	}
	est := respTree(t, AppendGetItemEstimateResponse(nil, []Estimate{{CollectionID: "5", Count: 3}}))
	r := "GetItemEstimate:GetItemEstimate/GetItemEstimate:Response/"
	if est[r+"GetItemEstimate:Status"][0] != "1" || est[r+"GetItemEstimate:Collection/GetItemEstimate:Estimate"][0] != "3" {
		t.Fatalf("%v", est)
	}
}

// TestSyntheticResponsesLibwbxml decodes the synthetic responses with
// libwbxml's wbxml2xml, an independent implementation.
func TestSyntheticResponsesLibwbxml(t *testing.T) {
	tool, err := exec.LookPath("wbxml2xml")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wbxml2xml (libwbxml2-utils) is required when CI=true")
		}
		t.Skip("wbxml2xml not installed (Debian libwbxml2-utils); skipping the libwbxml cross-check")
	}
	dir := t.TempDir()
	bodies := map[string][]byte{
		"sync.wbxml":       AppendSyncResponse(nil, V141, []SyncCollectionResponse{{SyncKey: "2", CollectionID: "5", Adds: []EmailItem{respNotice()}, MoreAvailable: true}}, BodyTypeHTML),
		"foldersync.wbxml": AppendFolderSyncResponse(nil, 1, "1", []Folder{{ServerID: "5", DisplayName: "Inbox", Type: 2}}),
		"ping.wbxml":       AppendPingResponse(nil, 2, []string{"5"}),
		"estimate.wbxml":   AppendGetItemEstimateResponse(nil, []Estimate{{CollectionID: "5", Count: 1}}),
		"status.wbxml":     func() []byte { b, _ := AppendStatusBody(nil, CmdMoveItems, 129); return b }(),
	}
	wants := map[string][]string{
		"sync.wbxml":       {"<MoreAvailable/>", ">Your phone is waiting for approval</Subject>", "<Type>2</Type>", `xmlns="AirSyncBase:"`},
		"foldersync.wbxml": {"<DisplayName>Inbox</DisplayName>", "<Count>1</Count>"},
		"ping.wbxml":       {"<Folder>5</Folder>", "<Status>2</Status>"},
		"estimate.wbxml":   {"<Estimate>1</Estimate>"},
		"status.wbxml":     {"<Status>129</Status>"},
	}
	for name, b := range bodies {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tool, "-l", "ACTIVESYNC", "-m", "1", "-i", "2", "-o", "-", path).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: wbxml2xml: %v\n%s", name, err, out)
		}
		for _, w := range wants[name] {
			if !bytes.Contains(out, []byte(w)) {
				t.Errorf("%s: libwbxml output lacks %q:\n%s", name, w, out)
			}
		}
	}
}

func TestRespCleanNoAlloc(t *testing.T) {
	s := "clean string"
	if n := testing.AllocsPerRun(100, func() { _ = respClean(s) }); n != 0 {
		t.Errorf("respClean allocates on clean input: %v", n)
	}
	if got := respClean("a\x00b\xc3"); got != "ab\uFFFD" {
		t.Errorf("respClean = %q", got)
	}
	if got := respHTMLToText("<p>a &amp; b</p>"); got != "a & b" {
		t.Errorf("respHTMLToText = %q", got)
	}
}
