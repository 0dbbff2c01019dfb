package wbxml

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSpecSpotCheck compares the generated tables with (page, token, name)
// triples typed by hand from MS-ASWBXML §2.1.2.1.x, independent of
// codepages.txt.
func TestSpecSpotCheck(t *testing.T) {
	tests := []struct {
		page, token uint8
		ns, name    string
	}{
		{0, 0x05, "AirSync", "Sync"},
		{0, 0x0B, "AirSync", "SyncKey"},
		{0, 0x0D, "AirSync", "ServerId"},
		{0, 0x0E, "AirSync", "Status"},
		{0, 0x12, "AirSync", "CollectionId"},
		{0, 0x16, "AirSync", "Commands"},
		{0, 0x1C, "AirSync", "Collections"},
		{0, 0x1D, "AirSync", "ApplicationData"},
		{0, 0x24, "AirSync", "Wait"},
		{0, 0x29, "AirSync", "HeartbeatInterval"},
		{1, 0x1E, "Contacts", "FileAs"},
		{1, 0x1F, "Contacts", "FirstName"},
		{1, 0x29, "Contacts", "LastName"},
		{1, 0x0D, "Contacts", "BusinessAddressCity"},
		{1, 0x3C, "Contacts", "Picture"},
		{2, 0x0F, "Email", "DateReceived"},
		{2, 0x13, "Email", "MessageClass"},
		{2, 0x14, "Email", "Subject"},
		{2, 0x15, "Email", "Read"},
		{2, 0x16, "Email", "To"},
		{2, 0x18, "Email", "From"},
		{4, 0x27, "Calendar", "StartTime"},
		{4, 0x28, "Calendar", "UID"},
		{5, 0x05, "Move", "MoveItems"},
		{6, 0x05, "GetItemEstimate", "GetItemEstimate"},
		{6, 0x0C, "GetItemEstimate", "Estimate"},
		{7, 0x07, "FolderHierarchy", "DisplayName"},
		{7, 0x0A, "FolderHierarchy", "Type"},
		{7, 0x12, "FolderHierarchy", "SyncKey"},
		{7, 0x16, "FolderHierarchy", "FolderSync"},
		{7, 0x17, "FolderHierarchy", "Count"},
		{8, 0x07, "MeetingResponse", "MeetingResponse"},
		{10, 0x05, "ResolveRecipients", "ResolveRecipients"},
		{10, 0x1D, "ResolveRecipients", "MaxPictures"},
		{12, 0x0E, "Contacts2", "MMS"},
		{13, 0x05, "Ping", "Ping"},
		{13, 0x08, "Ping", "HeartbeatInterval"},
		{13, 0x0D, "Ping", "MaxFolders"},
		{14, 0x09, "Provision", "PolicyKey"},
		{14, 0x0D, "Provision", "EASProvisionDoc"},
		{14, 0x0E, "Provision", "DevicePasswordEnabled"},
		{14, 0x3A, "Provision", "Hash"},
		{15, 0x09, "Search", "Query"},
		{16, 0x05, "GAL", "DisplayName"},
		{17, 0x0A, "AirSyncBase", "Body"},
		{17, 0x16, "AirSyncBase", "NativeBodyType"},
		{17, 0x18, "AirSyncBase", "Preview"},
		{18, 0x16, "Settings", "DeviceInformation"},
		{18, 0x17, "Settings", "Model"},
		{18, 0x20, "Settings", "UserAgent"},
		{18, 0x22, "Settings", "MobileOperator"},
		{18, 0x2B, "Settings", "RightsManagementInformation"},
		{20, 0x05, "ItemOperations", "ItemOperations"},
		{21, 0x05, "ComposeMail", "SendMail"},
		{22, 0x09, "Email2", "ConversationId"},
		{23, 0x05, "Notes", "Subject"},
		{24, 0x05, "RightsManagement", "RightsManagementSupport"},
		{25, 0x05, "Find", "Find"},
		{25, 0x22, "Find", "Picture"},
	}
	for _, tc := range tests {
		tag := MakeTag(tc.page, tc.token)
		if got := tag.Name(); got != tc.name {
			t.Errorf("page %d token 0x%02X: Name() = %q, want %q", tc.page, tc.token, got, tc.name)
		}
		if got := tag.Namespace(); got != tc.ns {
			t.Errorf("page %d token 0x%02X: Namespace() = %q, want %q", tc.page, tc.token, got, tc.ns)
		}
		if got, ok := LookupTag(tc.ns, tc.name); !ok || got != tag {
			t.Errorf("LookupTag(%q, %q) = %v, %v; want %v", tc.ns, tc.name, got, ok, tag)
		}
	}
}

// TestConstants checks a few generated constants against the spec values.
func TestConstants(t *testing.T) {
	tests := []struct {
		tag  Tag
		want uint16
	}{
		{AirSyncSync, 0x0005},
		{AirSyncHeartbeatInterval, 0x0029},
		{FolderHierarchyFolderSync, 0x0716},
		{ItemEstimateGetItemEstimate, 0x0605},
		{PingHeartbeatInterval, 0x0D08},
		{ProvisionDevicePasswordEnabled, 0x0E0E},
		{SettingsDeviceInformation, 0x1216},
		{SettingsEnableOutboundSMS, 0x1221},
		{AirSyncBaseEstimatedDataSize, 0x110C},
		{EmailMessageClass, 0x0213},
		{FindPicture, 0x1922},
	}
	for _, tc := range tests {
		if uint16(tc.tag) != tc.want {
			t.Errorf("%v = 0x%04X, want 0x%04X", tc.tag, uint16(tc.tag), tc.want)
		}
	}
}

// TestTableInvariants checks every table entry: names unique per page,
// Name/LookupTag agree, libwbxml spellings resolve to the same tag.
func TestTableInvariants(t *testing.T) {
	count := 0
	for p := range uint8(NumPages) {
		seen := map[string]uint8{}
		for tok := uint8(0); tok < 64; tok++ {
			name := tagNames[p][tok]
			if name == "" {
				continue
			}
			count++
			if tok < 0x05 {
				t.Errorf("page %d: token 0x%02X below 0x05", p, tok)
			}
			if prev, dup := seen[name]; dup {
				t.Errorf("page %d: name %q at 0x%02X and 0x%02X", p, name, prev, tok)
			}
			seen[name] = tok
			tag := MakeTag(p, tok)
			for _, ns := range []string{pageNamespace[p], pageGoName[p], pageNamespace[p] + ":"} {
				if got, ok := LookupTag(ns, name); !ok || got != tag {
					t.Errorf("LookupTag(%q, %q) = %v, %v; want %v", ns, name, got, ok, tag)
				}
			}
			if ln := libTagNames[p][tok]; ln != "" {
				if got, ok := LookupTag(pageLibNamespaceOr(p), ln); !ok || got != tag {
					t.Errorf("LookupTag(lib %q, %q) = %v, %v; want %v", pageLibNamespaceOr(p), ln, got, ok, tag)
				}
			}
		}
		if len(seen) == 0 {
			t.Errorf("page %d has no tokens", p)
		}
	}
	if count < 500 {
		t.Errorf("only %d tokens in the tables; MS-ASWBXML defines over 500", count)
	}
}

func pageLibNamespaceOr(p uint8) string {
	if pageLibNamespace[p] != "" {
		return pageLibNamespace[p]
	}
	return pageNamespace[p]
}

func TestTagString(t *testing.T) {
	tests := []struct {
		tag  Tag
		want string
	}{
		{AirSyncSync, "AirSync:Sync"},
		{ItemEstimateEstimate, "GetItemEstimate:Estimate"},
		{MakeTag(0, 0x3F), "0x00:0x3F"},
		{MakeTag(30, 0x05), "0x1E:0x05"},
		{MakeTag(0, 0x45), "AirSync:Sync"}, // content bit ignored
	}
	for _, tc := range tests {
		if got := tc.tag.String(); got != tc.want {
			t.Errorf("%#04x.String() = %q, want %q", uint16(tc.tag), got, tc.want)
		}
	}
	if MakeTag(30, 5).Name() != "" || MakeTag(30, 5).Namespace() != "" {
		t.Error("page 30 must have no name or namespace")
	}
	if _, ok := LookupTag("NoSuchNS", "Sync"); ok {
		t.Error("LookupTag accepted an unknown namespace")
	}
	if _, ok := LookupTag("AirSync", "NoSuchName"); ok {
		t.Error("LookupTag accepted an unknown name")
	}
	if n := testing.AllocsPerRun(100, func() { LookupTag("Settings:", "DeviceInformation") }); n != 0 {
		t.Errorf("LookupTag allocates %v times", n)
	}
}

// TestGeneratedUpToDate runs the generator and compares with tables_gen.go.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run; skipped in -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out := filepath.Join(t.TempDir(), "tables_gen.go")
	cmd := exec.Command(goBin, "run", "./internal/gen", "-in", "codepages.txt", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, b)
	}
	want, err := os.ReadFile("tables_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("tables_gen.go is stale: run `go generate ./eas/wbxml`")
	}
}
