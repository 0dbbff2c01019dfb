package eas

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/easgate/easgate/eas/wbxml"
)

// PROTOCOL.md §6.1 vectors B–G, typed from the document.
var bodyVectors = []struct {
	file string
	hex  string
}{
	{"vector_b_settings_deviceinfo.wbxml", `
03 01 6A 00 00 12 45 56 48 57 03 4D 61 6E 75 66 61 63 74 75 72 65 72 2D 4E 61 6D 65 2D 4E 75 6D 62 65 72 00 01 58 03 31 32
33 34 35 36 37 38 39 30 31 32 33 34 35 00 01 59 03 4D 79 20 50 50 43 20 50 68 6F 6E 65 00 01 5A 03 50 50 43 00 01 5B 03 75
73 2D 45 4E 00 01 5C 03 32 30 36 2D 35 35 35 2D 30 31 31 32 00 01 61 03 31 00 01 62 03 54 2D 4D 6F 6A 6F 00 01 01 01 01`},
	{"vector_c_provision_141_initial.wbxml", `
03 01 6A 00 00 0E 45 00 12 56 48 57 03 69 50 61 64 33 43 36 00 01 59 03 42 6C 61 63 6B 20 69 50 61 64 00 01 5A 03 69 4F 53
20 37 2E 30 2E 32 20 31 31 41 35 30 31 00 01 5B 03 65 6E 2D 47 42 00 01 60 03 69 4F 53 2F 37 2E 30 2E 32 20 28 31 31 41 35
30 31 29 20 64 61 74 61 61 63 63 65 73 73 64 2F 31 2E 30 00 01 01 01 00 0E 46 47 48 03 4D 53 2D 45 41 53 2D 50 72 6F 76 69
73 69 6F 6E 69 6E 67 2D 57 42 58 4D 4C 00 01 01 01 01`},
	{"vector_d_provision_ack.wbxml", `
03 01 6A 00 00 0E 45 46 47 48 03 4D 53 2D 45 41 53 2D 50 72 6F 76 69 73 69 6F 6E 69 6E 67 2D 57 42 58 4D 4C 00 01 49 03 31
33 30 37 31 39 39 35 38 34 00 01 4B 03 31 00 01 01 01 01`},
	{"vector_e_foldersync_request.wbxml", `03 01 6A 00 00 07 56 52 03 30 00 01 01`},
	{"vector_f_ping_request.wbxml", `03 01 6A 00 00 0D 45 48 03 34 38 30 00 01 49 4A 4B 03 35 00 01 4C 03 45 6D 61 69 6C 00 01 01 01 01`},
	{"vector_g_ping_response.wbxml", `03 01 6A 00 00 0D 45 47 03 31 00 01 01`},
}

// TestBodyVectors checks that each committed vector file equals both the
// hex in PROTOCOL.md and the encoding of its .xml source, so the vectors,
// the XML sources and the encoder agree.
func TestBodyVectors(t *testing.T) {
	for _, v := range bodyVectors {
		t.Run(v.file, func(t *testing.T) {
			got := bodyFile(t, v.file)
			want := bodyHex(t, v.hex)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding of the .xml differs from PROTOCOL.md:\ngot  %s\nwant %s", bodyHexDump(got), bodyHexDump(want))
			}
		})
	}
}

// TestBodyTestdataFresh checks every .wbxml in testdata/bodies against its
// .xml source (and rewrites them under -update).
func TestBodyTestdataFresh(t *testing.T) {
	srcs, err := filepath.Glob(filepath.Join(bodyDir, "*.xml"))
	if err != nil || len(srcs) < 20 {
		t.Fatalf("expected ≥20 XML sources in %s, got %d (%v)", bodyDir, len(srcs), err)
	}
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".xml") + ".wbxml"
		bodyFile(t, name)
	}
}

func TestReadDeviceInfo(t *testing.T) {
	ipad := DeviceInfo{Model: "iPad3C6", FriendlyName: "Black iPad", OS: "iOS 7.0.2 11A501", OSLanguage: "en-GB",
		UserAgent: "iOS/7.0.2 (11A501) dataaccessd/1.0"}
	tests := []struct {
		name  string
		file  string // testdata/bodies file; "" = body
		body  []byte
		found bool
		want  DeviceInfo
	}{
		{name: "vector B settings", file: "vector_b_settings_deviceinfo.wbxml", found: true, want: DeviceInfo{
			Model: "Manufacturer-Name-Number", IMEI: "123456789012345", FriendlyName: "My PPC Phone", OS: "PPC",
			OSLanguage: "us-EN", PhoneNumber: "206-555-0112", EnableOutboundSMS: "1", MobileOperator: "T-Mojo"}},
		{name: "vector C provision 14.1", file: "vector_c_provision_141_initial.wbxml", found: true, want: ipad},
		{name: "settings with Oof before and UserInformation after", file: "settings_request_oof_devinfo.wbxml", found: true,
			want: DeviceInfo{Model: "SM-G991B", IMEI: "356938035643809", FriendlyName: "Galaxy S21", OS: "Android 13",
				OSLanguage: "de-DE", PhoneNumber: "+49 30 1234567", UserAgent: "Android/13-EAS-2.0", EnableOutboundSMS: "0",
				MobileOperator: "Telekom.de"}},
		{name: "settings response has no Set", file: "settings_response.wbxml"},
		{name: "provision without DeviceInformation", file: "provision_initial_no_deviceinfo.wbxml"},
		{name: "other command", file: "vector_f_ping_request.wbxml"},
		{name: "empty body", body: []byte{}},
		{name: "empty Set", body: bodyHex(t, "03 01 6A 00 00 12 45 56 08 01 01"), found: true},
		{name: "empty Settings root", body: bodyHex(t, "03 01 6A 00 00 12 05")},
		{name: "empty value", body: bodyHex(t, "03 01 6A 00 00 12 45 56 48 17 5A 03 50 50 43 00 01 01 01 01"), found: true,
			want: DeviceInfo{OS: "PPC"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if tc.file != "" {
				body = bodyFile(t, tc.file)
			}
			sentinel := DeviceInfo{Model: "stale", IMEI: "stale"}
			got := sentinel
			found, err := ReadDeviceInfo(body, &got)
			if err != nil {
				t.Fatalf("ReadDeviceInfo: %v", err)
			}
			if found != tc.found {
				t.Fatalf("found = %v, want %v", found, tc.found)
			}
			want := tc.want
			if !found {
				want = sentinel // untouched
			}
			if got != want {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestReadDeviceInfoStopsEarly cuts vector B right after Set closes: the
// reader must have returned by then, so the missing ENDs are not an error.
func TestReadDeviceInfoStopsEarly(t *testing.T) {
	full := bodyFile(t, "vector_b_settings_deviceinfo.wbxml")
	cut := full[:len(full)-2] // drop END DeviceInformation, END Settings
	var di DeviceInfo
	found, err := ReadDeviceInfo(cut, &di)
	if err != nil || !found || di.MobileOperator != "T-Mojo" {
		t.Fatalf("found=%v err=%v di=%+v", found, err, di)
	}
	// Garbage after Set is never looked at either.
	junk := append(append([]byte{}, cut...), 0xFF, 0xFF, 0x02)
	if found, err := ReadDeviceInfo(junk, &di); err != nil || !found {
		t.Fatalf("with trailing junk: found=%v err=%v", found, err)
	}
	// Cutting inside Set is an error.
	if _, err := ReadDeviceInfo(full[:len(full)-5], &di); bodyErrKind(err) != BodySyntax {
		t.Fatalf("cut inside Set: err = %v, want BodySyntax", err)
	}
}

func TestReadDeviceInfoLimits(t *testing.T) {
	build := func(model string) []byte {
		e := wbxml.NewEncoder(nil)
		e.Header()
		e.Start(wbxml.SettingsSettings)
		e.Start(wbxml.SettingsDeviceInformation)
		e.Start(wbxml.SettingsSet)
		e.Element(wbxml.SettingsModel, model)
		e.End()
		e.End()
		e.End()
		return e.Bytes()
	}
	var di DeviceInfo
	// 1024 characters of two bytes each: within the limit (characters, not bytes).
	long := strings.Repeat("ä", MaxDeviceInfoValue)
	if found, err := ReadDeviceInfo(build(long), &di); err != nil || !found || di.Model != long {
		t.Fatalf("1024 chars: found=%v err=%v", found, err)
	}
	_, err := ReadDeviceInfo(build(strings.Repeat("x", MaxDeviceInfoValue+1)), &di)
	var be *BodyError
	if !errors.As(err, &be) || be.Kind != BodyTooLong || be.Element != "Settings:Model" || be.Offset != 10 {
		t.Fatalf("1025 chars: err = %#v", err)
	}
	if strings.Contains(err.Error(), "xxxx") {
		t.Fatalf("error quotes the value: %v", err)
	}
}

func TestReadProvision(t *testing.T) {
	ipad := DeviceInfo{Model: "iPad3C6", FriendlyName: "Black iPad", OS: "iOS 7.0.2 11A501", OSLanguage: "en-GB",
		UserAgent: "iOS/7.0.2 (11A501) dataaccessd/1.0"}
	tests := []struct {
		file string
		want ProvisionInfo
		info DeviceInfo
	}{
		{"vector_c_provision_141_initial.wbxml", ProvisionInfo{PolicyType: PolicyTypeWBXML, HasDeviceInfo: true}, ipad},
		{"vector_d_provision_ack.wbxml", ProvisionInfo{PolicyType: PolicyTypeWBXML, PolicyKey: 1307199584, HasPolicyKey: true, Status: 1}, DeviceInfo{}},
		{"provision_response_initial.wbxml", ProvisionInfo{PolicyType: PolicyTypeWBXML, PolicyKey: 3942919513, HasPolicyKey: true,
			Status: 1, ProvisionStatus: 1}, DeviceInfo{}},
		{"provision_ack_response.wbxml", ProvisionInfo{PolicyType: PolicyTypeWBXML, PolicyKey: 1307199584, HasPolicyKey: true,
			Status: 1, ProvisionStatus: 1}, DeviceInfo{}},
		{"provision_remotewipe_response.wbxml", ProvisionInfo{ProvisionStatus: 1, RemoteWipe: true}, DeviceInfo{}},
		{"provision_remotewipe_ack.wbxml", ProvisionInfo{RemoteWipe: true, RemoteWipeStatus: 1}, DeviceInfo{}},
		{"provision_initial_no_deviceinfo.wbxml", ProvisionInfo{PolicyType: PolicyTypeWBXML}, DeviceInfo{}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := bodyFile(t, tc.file)
			got := ProvisionInfo{PolicyType: "stale", Status: 99}
			var info DeviceInfo
			if err := ReadProvision(body, &got, &info); err != nil {
				t.Fatalf("ReadProvision: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if info != tc.info {
				t.Fatalf("info %+v\nwant %+v", info, tc.info)
			}
			// A nil info is allowed.
			if err := ReadProvision(body, &got, nil); err != nil || got != tc.want {
				t.Fatalf("nil info: %v %+v", err, got)
			}
		})
	}
}

func TestReadProvisionErrors(t *testing.T) {
	policy := func(key string) []byte {
		e := wbxml.NewEncoder(nil)
		e.Header()
		e.Start(wbxml.ProvisionProvision)
		e.Start(wbxml.ProvisionPolicies)
		e.Start(wbxml.ProvisionPolicy)
		e.Element(wbxml.ProvisionPolicyKey, key)
		e.End()
		e.End()
		e.End()
		return e.Bytes()
	}
	tests := []struct {
		name string
		body []byte
		kind BodyErrorKind
		off  int
	}{
		{"empty", nil, BodyEmpty, 0},
		{"wrong root", bodyHex(t, "03 01 6A 00 00 0D 45 47 03 31 00 01 01"), BodyWrongRoot, 6},
		{"key not a number", policy("13O7199584"), BodyBadValue, 10},
		{"key over uint32", policy("4294967296"), BodyBadValue, 10},
		{"key negative", policy("-1"), BodyBadValue, 10},
		{"key blank", policy("  "), BodyBadValue, 10},
		{"truncated", bodyHex(t, "03 01 6A 00 00 0E 45 46 47 48 03 4D 53"), BodySyntax, 10},
		{"bad header", bodyHex(t, "07 01 6A 00 00 0E 45 01"), BodySyntax, 0},
		{"element inside status", bodyHex(t, "03 01 6A 00 00 0E 45 4B 4B 03 31 00 01 01 01"), BodyStructure, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p ProvisionInfo
			err := ReadProvision(tc.body, &p, nil)
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("err = %v, want *BodyError", err)
			}
			if be.Kind != tc.kind || be.Offset != tc.off || be.Command != "Provision" {
				t.Fatalf("got kind=%v offset=%d cmd=%q (%v), want kind=%v offset=%d", be.Kind, be.Offset, be.Command, err, tc.kind, tc.off)
			}
			if tc.kind == BodySyntax {
				var se *wbxml.SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("BodySyntax does not unwrap to *wbxml.SyntaxError: %v", err)
				}
			}
			// Policy keys are credentials: never in the message.
			if strings.Contains(err.Error(), "4294967296") || strings.Contains(err.Error(), "13O7") {
				t.Fatalf("error quotes the policy key: %v", err)
			}
		})
	}
}

func TestReadPing(t *testing.T) {
	tests := []struct {
		file string
		body []byte
		want PingInfo
	}{
		{file: "vector_f_ping_request.wbxml", want: PingInfo{HeartbeatInterval: 480, Folders: []PingFolder{{"5", "Email"}}}},
		{file: "vector_g_ping_response.wbxml", want: PingInfo{Status: 1}},
		{file: "ping_request_multi.wbxml", want: PingInfo{HeartbeatInterval: 900,
			Folders: []PingFolder{{"5", "Email"}, {"1", "Calendar"}, {"2", "Contacts"}}}},
		{file: "ping_response_changes.wbxml", want: PingInfo{Status: 2, Folders: []PingFolder{{ID: "5"}, {ID: "1"}}}},
		{file: "ping_response_interval.wbxml", want: PingInfo{Status: 5, HeartbeatInterval: 3540}},
		{body: []byte{}, want: PingInfo{Empty: true}},
		{body: bodyHex(t, "03 01 6A 00 00 0D 45 4D 03 32 30 30 00 01 47 03 36 00 01 01"), want: PingInfo{Status: 6, MaxFolders: 200}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := tc.body
			if tc.file != "" {
				body = bodyFile(t, tc.file)
			}
			// Start from a dst holding a previous, larger result.
			got := PingInfo{HeartbeatInterval: 1, Status: 9, Empty: true,
				Folders: []PingFolder{{"x", "y"}, {"a", "b"}, {"c", "d"}, {"e", "f"}}}
			if err := ReadPing(body, &got); err != nil {
				t.Fatalf("ReadPing: %v", err)
			}
			if len(got.Folders) == 0 {
				got.Folders = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadPingReusesFolders(t *testing.T) {
	body := bodyFile(t, "ping_request_multi.wbxml")
	var p PingInfo
	if err := ReadPing(body, &p); err != nil {
		t.Fatal(err)
	}
	first := &p.Folders[0]
	if bodyRace {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := ReadPing(body, &p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || &p.Folders[0] != first || len(p.Folders) != 3 {
		t.Fatalf("re-reading the same Ping: %v allocs, reused=%v, len %d", allocs, &p.Folders[0] == first, len(p.Folders))
	}
}

func TestReadPingInterval(t *testing.T) {
	tests := []struct {
		name string
		file string
		body []byte
		secs int
		ok   bool
		kind BodyErrorKind
	}{
		{name: "vector F", file: "vector_f_ping_request.wbxml", secs: 480, ok: true},
		{name: "multi", file: "ping_request_multi.wbxml", secs: 900, ok: true},
		{name: "response without interval", file: "vector_g_ping_response.wbxml"},
		{name: "empty body", body: []byte{}},
		{name: "empty root", body: bodyHex(t, "03 01 6A 00 00 0D 05")},
		{name: "interval after folders", body: bodyHex(t, "03 01 6A 00 00 0D 45 49 4A 4B 03 35 00 01 01 01 48 03 36 30 00 01 01"), secs: 60, ok: true},
		{name: "wrong root", file: "vector_e_foldersync_request.wbxml", kind: BodyWrongRoot},
		{name: "not a number", body: bodyHex(t, "03 01 6A 00 00 0D 45 48 03 34 38 78 00 01 01"), kind: BodyBadValue},
		{name: "huge", body: bodyHex(t, "03 01 6A 00 00 0D 45 48 03 39 39 39 39 39 39 39 39 39 39 39 00 01 01"), kind: BodyBadValue},
		{name: "truncated", body: bodyHex(t, "03 01 6A 00 00 0D 45 48 03 34 38"), kind: BodySyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if tc.file != "" {
				body = bodyFile(t, tc.file)
			}
			secs, ok, err := ReadPingInterval(body)
			if bodyErrKind(err) != tc.kind || (tc.kind == 0 && err != nil) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if secs != tc.secs || ok != tc.ok {
				t.Fatalf("got %d, %v; want %d, %v", secs, ok, tc.secs, tc.ok)
			}
		})
	}
}

func TestReadSync(t *testing.T) {
	tests := []struct {
		file string
		body []byte
		want SyncInfo
	}{
		{file: "sync_request_wait.wbxml", want: SyncInfo{Wait: 8, HasWait: true, Collections: []SyncCollection{
			{SyncKey: "1129367346", CollectionID: "5", GetChanges: GetChangesYes, WindowSize: 25, BodyTypes: []int{2}},
			{SyncKey: "0", CollectionID: "1"}}}},
		{file: "sync_request_heartbeat.wbxml", want: SyncInfo{HeartbeatInterval: 60, HasHeartbeatInterval: true, WindowSize: 512,
			Collections: []SyncCollection{{SyncKey: "560109801", CollectionID: "5", GetChanges: GetChangesYes, WindowSize: 512}}}},
		{file: "sync_request_commands_121.wbxml", want: SyncInfo{Collections: []SyncCollection{
			{SyncKey: "3", CollectionID: "5", Class: "Email", GetChanges: GetChangesNo, HasCommands: true,
				Commands: []SyncCommand{{Kind: SyncChange, ID: "5:12"}}}}}},
		{file: "sync_request_commands_141.wbxml", want: SyncInfo{HeartbeatInterval: 480, HasHeartbeatInterval: true,
			Collections: []SyncCollection{
				{SyncKey: "1234567890", CollectionID: "5", GetChanges: GetChangesNo, WindowSize: 50, BodyTypes: []int{2, 4, 1},
					HasCommands: true, Commands: []SyncCommand{{Kind: SyncAdd, ID: "c-1"}, {Kind: SyncChange, ID: "5:12"},
						{Kind: SyncDelete, ID: "5:13"}, {Kind: SyncFetch, ID: "5:14"}}},
				{SyncKey: "42", CollectionID: "8", HasCommands: true, Commands: []SyncCommand{{Kind: SyncAdd, ID: "c-2", Class: "Calendar"}}}}}},
		{file: "sync_request_partial.wbxml", want: SyncInfo{Wait: 20, HasWait: true, Partial: true, Collections: []SyncCollection{
			{SyncKey: "7", CollectionID: "9"}}}},
		{body: []byte{}, want: SyncInfo{Empty: true}},
		// Sync response with Status 14 and Limit (MS-ASCMD §2.2.3.97).
		{body: bodyHex(t, "03 01 6A 00 45 4E 03 31 34 00 01 65 03 35 39 00 01 01"), want: SyncInfo{Status: 14, Limit: 59}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := tc.body
			if tc.file != "" {
				body = bodyFile(t, tc.file)
			}
			got := SyncInfo{Wait: 3, HasWait: true, Partial: true, Collections: []SyncCollection{
				{SyncKey: "old", CollectionID: "old", Class: "old", GetChanges: GetChangesYes, WindowSize: 7, HasCommands: true,
					Commands: []SyncCommand{{Kind: SyncFetch, ID: "old", Class: "old"}, {Kind: SyncAdd, ID: "x"}}, BodyTypes: []int{9, 9, 9}},
				{SyncKey: "0", CollectionID: "1", Class: "Calendar", Status: 3, MoreAvailable: true, GetChanges: GetChangesNo},
				{}, {}}}
			if err := ReadSync(body, &got); err != nil {
				t.Fatalf("ReadSync: %v", err)
			}
			if len(got.Collections) == 0 {
				got.Collections = nil
			}
			for i := range got.Collections {
				c := &got.Collections[i]
				if len(c.Commands) == 0 {
					c.Commands = nil
				}
				if len(c.BodyTypes) == 0 {
					c.BodyTypes = nil
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadSyncHold(t *testing.T) {
	tests := []struct {
		name string
		file string
		body []byte
		secs int
		ok   bool
		kind BodyErrorKind
	}{
		{name: "wait 8 min", file: "sync_request_wait.wbxml", secs: 480, ok: true},
		{name: "heartbeat 60 s", file: "sync_request_heartbeat.wbxml", secs: 60, ok: true},
		{name: "partial wait 20", file: "sync_request_partial.wbxml", secs: 1200, ok: true},
		{name: "no long poll", file: "sync_request_commands_121.wbxml"},
		{name: "empty body", body: []byte{}},
		{name: "wrong root", file: "vector_f_ping_request.wbxml", kind: BodyWrongRoot},
		{name: "bad wait", body: bodyHex(t, "03 01 6A 00 45 64 03 38 6D 00 01 01"), kind: BodyBadValue},
		{name: "wait as element", body: bodyHex(t, "03 01 6A 00 45 64 4E 03 31 00 01 01 01"), kind: BodyStructure},
		{name: "truncated in collections", body: bodyHex(t, "03 01 6A 00 45 5C 4F 4B 03 31"), kind: BodySyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if tc.file != "" {
				body = bodyFile(t, tc.file)
			}
			secs, ok, err := ReadSyncHold(body)
			if bodyErrKind(err) != tc.kind || (tc.kind == 0 && err != nil) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if secs != tc.secs || ok != tc.ok {
				t.Fatalf("got %d, %v; want %d, %v", secs, ok, tc.secs, tc.ok)
			}
		})
	}
}

func TestReadFolderSync(t *testing.T) {
	initial := []Folder{
		{"1", "0", "Calendar", 8}, {"2", "0", "Contacts", 9}, {"3", "0", "Deleted Items", 4}, {"4", "0", "Drafts", 3},
		{"5", "0", "Inbox", 2}, {"6", "0", "Journal", 11}, {"7", "0", "Notes", 10}, {"8", "0", "Outbox", 6},
		{"9", "0", "Sent Items", 5}, {"10", "0", "Tasks", 7}, {"11", "5", "Projekte – Ärger", 12},
	}
	tests := []struct {
		file  string
		want  FolderSyncInfo
		inbox string
	}{
		{"vector_e_foldersync_request.wbxml", FolderSyncInfo{SyncKey: "0"}, ""},
		{"foldersync_response_initial.wbxml", FolderSyncInfo{Status: 1, SyncKey: "1", Count: 11, Folders: initial}, "5"},
		{"foldersync_response_changes.wbxml", FolderSyncInfo{Status: 1, SyncKey: "2", Count: 3,
			Folders: []Folder{{"11", "0", "Projects", 12}, {"12", "11", "2026", 12}}, Deleted: []string{"6"}}, ""},
		{"foldersync_response_error.wbxml", FolderSyncInfo{Status: 9}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got := FolderSyncInfo{Status: 4, SyncKey: "stale", Count: 9,
				Folders: []Folder{{"a", "b", "c", 2}, {"d", "e", "f", 3}}, Deleted: []string{"x", "y"}}
			if err := ReadFolderSync(bodyFile(t, tc.file), &got); err != nil {
				t.Fatalf("ReadFolderSync: %v", err)
			}
			if len(got.Folders) == 0 {
				got.Folders = nil
			}
			if len(got.Deleted) == 0 {
				got.Deleted = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			inbox, ok := got.Inbox()
			if ok != (tc.inbox != "") || inbox.ServerID != tc.inbox {
				t.Fatalf("Inbox() = %+v, %v; want id %q", inbox, ok, tc.inbox)
			}
		})
	}
	var f FolderSyncInfo
	if err := ReadFolderSync(nil, &f); bodyErrKind(err) != BodyEmpty {
		t.Fatalf("empty body: %v", err)
	}
	if err := ReadFolderSync(bodyFile(t, "vector_g_ping_response.wbxml"), &f); bodyErrKind(err) != BodyWrongRoot {
		t.Fatalf("wrong root: %v", err)
	}
}

// TestBodyReadersTruncated feeds every prefix of every testdata body to
// every reader: none may panic, every error must be a *BodyError, and any
// success on a prefix must be a reader that legitimately stopped early.
func TestBodyReadersTruncated(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(bodyDir, "*.wbxml"))
	if len(files) == 0 {
		t.Fatal("no testdata bodies")
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(body); n++ {
			bodyCheckAll(t, body[:n])
		}
		bodyCheckAll(t, body)
	}
}

// bodyCheckAll runs every reader on body and checks the error types and the
// invariants between the fast and full readers.
func bodyCheckAll(t testing.TB, body []byte) {
	t.Helper()
	check := func(name string, err error) {
		if err == nil {
			return
		}
		var be *BodyError
		if !errors.As(err, &be) || be.Kind == 0 || be.Msg == "" || be.Offset < 0 || be.Offset > len(body) {
			t.Fatalf("%s(% X): bad error %#v", name, body, err)
		}
	}
	var di DeviceInfo
	found, err := ReadDeviceInfo(body, &di)
	check("ReadDeviceInfo", err)
	if found {
		for _, s := range []string{di.Model, di.IMEI, di.FriendlyName, di.OS, di.OSLanguage, di.PhoneNumber, di.UserAgent,
			di.EnableOutboundSMS, di.MobileOperator} {
			if len([]rune(s)) > MaxDeviceInfoValue {
				t.Fatalf("ReadDeviceInfo returned an over-long value")
			}
		}
	}
	var p ProvisionInfo
	check("ReadProvision", ReadProvision(body, &p, &di))
	var ping PingInfo
	pingErr := ReadPing(body, &ping)
	check("ReadPing", pingErr)
	secs, ok, err := ReadPingInterval(body)
	check("ReadPingInterval", err)
	if pingErr == nil && err != nil {
		t.Fatalf("ReadPing accepted % X but ReadPingInterval failed: %v", body, err)
	}
	if err == nil && ok && secs < 0 {
		t.Fatalf("negative interval")
	}
	var s SyncInfo
	syncErr := ReadSync(body, &s)
	check("ReadSync", syncErr)
	hold, ok, err := ReadSyncHold(body)
	check("ReadSyncHold", err)
	if syncErr == nil && err != nil {
		t.Fatalf("ReadSync accepted % X but ReadSyncHold failed: %v", body, err)
	}
	if syncErr == nil && ok && hold != s.Wait*60 && hold != s.HeartbeatInterval {
		t.Fatalf("ReadSyncHold %d disagrees with ReadSync %+v", hold, s)
	}
	if syncErr == nil {
		syncCheckBounds(t, &s)
	}
	var fs FolderSyncInfo
	check("ReadFolderSync", ReadFolderSync(body, &fs))
	var est GetItemEstimateInfo
	if err := ReadGetItemEstimate(body, &est); err != nil {
		check("ReadGetItemEstimate", err)
	} else if len(est.Collections) > MaxSyncCollections {
		t.Fatalf("ReadGetItemEstimate kept %d collections", len(est.Collections))
	}
}

// syncCheckBounds fails when what ReadSync accepted breaks its bounds.
func syncCheckBounds(t testing.TB, s *SyncInfo) {
	t.Helper()
	if len(s.Collections) > MaxSyncCollections {
		t.Fatalf("ReadSync kept %d collections", len(s.Collections))
	}
	n := 0
	for _, c := range s.Collections {
		n += len(c.Commands)
		if len(c.BodyTypes) > MaxSyncBodyTypes || len(c.SyncKey) > MaxSyncIDLen || len(c.CollectionID) > MaxSyncIDLen ||
			len(c.Class) > MaxSyncIDLen || c.GetChanges > GetChangesYes || (len(c.Commands) > 0 && !c.HasCommands) {
			t.Fatalf("ReadSync collection out of bounds: %d body types, ids %d/%d/%d, GetChanges %d",
				len(c.BodyTypes), len(c.SyncKey), len(c.CollectionID), len(c.Class), c.GetChanges)
		}
		for _, cmd := range c.Commands {
			if cmd.Kind.Tag() == 0 || len(cmd.ID) > MaxSyncIDLen || len(cmd.Class) > MaxSyncIDLen {
				t.Fatalf("ReadSync command out of bounds: kind %d, id %d, class %d", cmd.Kind, len(cmd.ID), len(cmd.Class))
			}
		}
	}
	if n > MaxSyncCommands {
		t.Fatalf("ReadSync kept %d commands", n)
	}
	if (s.Wait != 0 && !s.HasWait) || (s.HeartbeatInterval != 0 && !s.HasHeartbeatInterval) {
		t.Fatalf("Wait %d/%v HeartbeatInterval %d/%v", s.Wait, s.HasWait, s.HeartbeatInterval, s.HasHeartbeatInterval)
	}
}

func TestBodyErrorString(t *testing.T) {
	_, _, err := ReadPingInterval(bodyHex(t, "03 01 6A 00 00 0D 45 48 03 34 38 78 00 01 01"))
	want := "eas: Ping body: Ping:HeartbeatInterval: not a number in range (offset 8)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	_, _, err = ReadPingInterval(bodyHex(t, "03 01 6A 00 00 0D 45 48"))
	if err == nil || !strings.HasPrefix(err.Error(), "eas: Ping body: malformed WBXML: ") {
		t.Fatalf("syntax error text: %q", err)
	}
	if BodyTooLong.String() != "too_long" || BodyErrorKind(200).String() != "kind200" {
		t.Fatal("BodyErrorKind.String")
	}
}

// TestBodyHotPathAllocs proves the hot-path readers allocate nothing.
func TestBodyHotPathAllocs(t *testing.T) {
	if bodyRace {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	ping := bodyFile(t, "vector_f_ping_request.wbxml")
	wait := bodyFile(t, "sync_request_wait.wbxml")
	hb := bodyFile(t, "sync_request_heartbeat.wbxml")
	for name, fn := range map[string]func(){
		"ReadPingInterval": func() {
			if s, ok, err := ReadPingInterval(ping); s != 480 || !ok || err != nil {
				t.Fatal(s, ok, err)
			}
		},
		"ReadSyncHold/Wait": func() {
			if s, ok, err := ReadSyncHold(wait); s != 480 || !ok || err != nil {
				t.Fatal(s, ok, err)
			}
		},
		"ReadSyncHold/HeartbeatInterval": func() {
			if s, ok, err := ReadSyncHold(hb); s != 60 || !ok || err != nil {
				t.Fatal(s, ok, err)
			}
		},
	} {
		if n := testing.AllocsPerRun(200, fn); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}

func TestReadPingSyncErrors(t *testing.T) {
	tests := []struct {
		name string
		read func([]byte) error
		hex  string
		kind BodyErrorKind
		off  int
	}{
		{"ping folder with two ids", bodyReadPing, "03 01 6A 00 00 0D 45 49 4A 4B 03 35 00 01 03 36 00 01 01 01", BodyStructure, 14},
		{"ping status not a number", bodyReadPing, "03 01 6A 00 00 0D 45 47 03 78 00 01 01", BodyBadValue, 8},
		{"ping wrong root", bodyReadPing, "03 01 6A 00 45 4E 03 31 00 01 01", BodyWrongRoot, 4},
		{"ping trailing data", bodyReadPing, "03 01 6A 00 00 0D 45 47 03 31 00 01 01 01", BodySyntax, 13},
		{"sync window not a number", bodyReadSync, "03 01 6A 00 45 55 03 2D 31 00 01 01", BodyBadValue, 6},
		{"sync key too long", bodyReadSync, "03 01 6A 00 45 5C 4F 4B 03 " + strings.Repeat("41 ", maxShortValue+1) + "00 01 01 01 01", BodyTooLong, 8},
		{"sync unclosed", bodyReadSync, "03 01 6A 00 45 5C 4F", BodySyntax, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.read(bodyHex(t, tc.hex))
			var be *BodyError
			if !errors.As(err, &be) || be.Kind != tc.kind || be.Offset != tc.off {
				t.Fatalf("err = %v, want kind %v at %d", err, tc.kind, tc.off)
			}
		})
	}
}

func bodyReadPing(b []byte) error { var p PingInfo; return ReadPing(b, &p) }
func bodyReadSync(b []byte) error { var s SyncInfo; return ReadSync(b, &s) }
