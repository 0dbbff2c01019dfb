package wbxml

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tokenLine renders a token for comparisons in tests.
func tokenLine(t Token) string {
	switch t.Kind {
	case StartTag:
		if t.HasContent {
			return "<" + t.Tag.String() + ">"
		}
		return "<" + t.Tag.String() + "/>"
	case EndTag:
		return "</" + t.Tag.String() + ">"
	case Text:
		return "text(" + t.Tag.Name() + ")=" + string(t.Data)
	case Opaque:
		return "opaque(" + t.Tag.Name() + ")=" + string(t.Data)
	}
	return "?"
}

func tokenize(t *testing.T, data []byte) []string {
	t.Helper()
	d := NewDecoder(data)
	var out []string
	for {
		tok, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v (after %q)", err, out)
		}
		out = append(out, tokenLine(tok))
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeVectors(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"vector_a_sync_add_contact.wbxml", []string{
			"<AirSync:Sync>", "<AirSync:Collections>", "<AirSync:Collection>",
			"<AirSync:Class>", "text(Class)=Contacts", "</AirSync:Class>",
			"<AirSync:SyncKey>", "text(SyncKey)=2", "</AirSync:SyncKey>",
			"<AirSync:CollectionId>", "text(CollectionId)=2", "</AirSync:CollectionId>",
			"<AirSync:Status>", "text(Status)=1", "</AirSync:Status>",
			"<AirSync:Commands>", "<AirSync:Add>",
			"<AirSync:ServerId>", "text(ServerId)=2:1", "</AirSync:ServerId>",
			"<AirSync:ApplicationData>",
			"<AirSyncBase:Body>",
			"<AirSyncBase:Type>", "text(Type)=1", "</AirSyncBase:Type>",
			"<AirSyncBase:EstimatedDataSize>", "text(EstimatedDataSize)=0", "</AirSyncBase:EstimatedDataSize>",
			"<AirSyncBase:Truncated>", "text(Truncated)=1", "</AirSyncBase:Truncated>",
			"</AirSyncBase:Body>",
			"<Contacts:FileAs>", "text(FileAs)=Funk, Don", "</Contacts:FileAs>",
			"<Contacts:FirstName>", "text(FirstName)=Don", "</Contacts:FirstName>",
			"<Contacts:LastName>", "text(LastName)=Funk", "</Contacts:LastName>",
			"<AirSyncBase:NativeBodyType>", "text(NativeBodyType)=1", "</AirSyncBase:NativeBodyType>",
			"</AirSync:ApplicationData>", "</AirSync:Add>", "</AirSync:Commands>",
			"</AirSync:Collection>", "</AirSync:Collections>", "</AirSync:Sync>",
		}},
		{"vector_e_foldersync_initial.wbxml", []string{
			"<FolderHierarchy:FolderSync>", "<FolderHierarchy:SyncKey>", "text(SyncKey)=0",
			"</FolderHierarchy:SyncKey>", "</FolderHierarchy:FolderSync>",
		}},
		{"vector_g_ping_nochanges.wbxml", []string{
			"<Ping:Ping>", "<Ping:Status>", "text(Status)=1", "</Ping:Status>", "</Ping:Ping>",
		}},
		{"vector_h_block_sync.wbxml", []string{
			"<AirSync:Sync>", "<AirSync:Status>", "text(Status)=129", "</AirSync:Status>", "</AirSync:Sync>",
		}},
		{"vector_d_provision_ack.wbxml", []string{
			"<Provision:Provision>", "<Provision:Policies>", "<Provision:Policy>",
			"<Provision:PolicyType>", "text(PolicyType)=MS-EAS-Provisioning-WBXML", "</Provision:PolicyType>",
			"<Provision:PolicyKey>", "text(PolicyKey)=1307199584", "</Provision:PolicyKey>",
			"<Provision:Status>", "text(Status)=1", "</Provision:Status>",
			"</Provision:Policy>", "</Provision:Policies>", "</Provision:Provision>",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got := tokenize(t, readTestdata(t, tc.file))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("tokens:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestDecodeDeviceInformation reads Settings fields out of vectors B and C the
// way eas.DeviceInfo does (page switching inside Provision included).
func TestDecodeDeviceInformation(t *testing.T) {
	tests := []struct {
		file string
		want map[Tag]string
	}{
		{"vector_b_settings_deviceinfo.wbxml", map[Tag]string{
			SettingsModel: "Manufacturer-Name-Number", SettingsIMEI: "123456789012345",
			SettingsFriendlyName: "My PPC Phone", SettingsOS: "PPC", SettingsOSLanguage: "us-EN",
			SettingsPhoneNumber: "206-555-0112", SettingsEnableOutboundSMS: "1", SettingsMobileOperator: "T-Mojo",
		}},
		{"vector_c_provision_initial.wbxml", map[Tag]string{
			SettingsModel: "iPad3C6", SettingsFriendlyName: "Black iPad", SettingsOS: "iOS 7.0.2 11A501",
			SettingsOSLanguage: "en-GB", SettingsUserAgent: "iOS/7.0.2 (11A501) dataaccessd/1.0",
			ProvisionPolicyType: "MS-EAS-Provisioning-WBXML",
		}},
	}
	for _, tc := range tests {
		d := NewDecoder(readTestdata(t, tc.file))
		got := map[Tag]string{}
		for {
			tok, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if tok.Kind == Text {
				got[tok.Tag] = string(tok.Data)
			}
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %v = %q, want %q", tc.file, k, got[k], v)
			}
		}
	}
}

func TestDecodeAllTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.wbxml")
	if len(files) < 20 {
		t.Fatalf("only %d testdata bodies", len(files))
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		d := NewDecoder(data)
		n := 0
		for {
			_, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			n++
		}
		if d.Depth() != 0 || d.Offset() != len(data) {
			t.Errorf("%s: end depth %d offset %d/%d", f, d.Depth(), d.Offset(), len(data))
		}
	}
}

func hdr(b ...byte) []byte { return append([]byte{0x03, 0x01, 0x6A, 0x00}, b...) }

func TestMalformed(t *testing.T) {
	deep := hdr()
	for range 100 {
		deep = append(deep, 0x45)
	}
	longStr := hdr(0x45, 0x03)
	longStr = append(longStr, bytes.Repeat([]byte("a"), 40)...)
	longStr = append(longStr, 0x00, 0x01)
	tests := []struct {
		name   string
		data   []byte
		limits Limits
		code   ErrorCode
		offset int
	}{
		{"empty", nil, Limits{}, ErrTruncated, 0},
		{"version 0x00", []byte{0x00, 0x01, 0x6A, 0x00, 0x45, 0x01}, Limits{}, ErrBadHeader, 0},
		{"version 0x04", []byte{0x04, 0x01, 0x6A, 0x00, 0x45, 0x01}, Limits{}, ErrBadHeader, 0},
		{"header truncated after version", []byte{0x03}, Limits{}, ErrTruncated, 1},
		{"header truncated in charset", []byte{0x03, 0x01}, Limits{}, ErrTruncated, 2},
		{"header without string table length", []byte{0x03, 0x01, 0x6A}, Limits{}, ErrTruncated, 3},
		{"charset latin1", []byte{0x03, 0x01, 0x04, 0x00, 0x45, 0x01}, Limits{}, ErrBadHeader, 2},
		{"charset mb_u_int32 6 bytes", []byte{0x03, 0x01, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00}, Limits{}, ErrBadMBUint32, 2},
		{"charset mb_u_int32 overflow", []byte{0x03, 0x01, 0x90, 0x80, 0x80, 0x80, 0x00, 0x00}, Limits{}, ErrBadMBUint32, 2},
		{"string table longer than input", []byte{0x03, 0x01, 0x6A, 0x10, 0x45, 0x01}, Limits{}, ErrTruncated, 3},
		{"header only", hdr(), Limits{}, ErrNoRoot, 4},
		{"switch page only", hdr(0x00, 0x07), Limits{}, ErrNoRoot, 6},
		{"switch page to 200", hdr(0x00, 0xC8, 0x45, 0x01), Limits{}, ErrUnknownPage, 5},
		{"switch page to 26", hdr(0x00, 0x1A, 0x45, 0x01), Limits{}, ErrUnknownPage, 5},
		{"switch page truncated", hdr(0x45, 0x00), Limits{}, ErrTruncated, 5},
		{"END with nothing open", hdr(0x01), Limits{}, ErrUnexpectedEnd, 4},
		{"unclosed root", hdr(0x45, 0x4B, 0x03, 0x31, 0x00, 0x01), Limits{}, ErrUnclosed, 10},
		{"string without NUL", hdr(0x45, 0x03, 0x61, 0x62), Limits{}, ErrUnterminatedString, 5},
		{"string too long", longStr, Limits{MaxStringLen: 39}, ErrStringTooLong, 5},
		{"invalid UTF-8", hdr(0x45, 0x03, 0x61, 0xFF, 0x62, 0x00, 0x01), Limits{}, ErrInvalidUTF8, 7},
		{"UTF-8 surrogate", hdr(0x45, 0x03, 0xED, 0xA0, 0x80, 0x00, 0x01), Limits{}, ErrInvalidUTF8, 6},
		{"opaque claiming 1 GB", hdr(0x45, 0xC3, 0x84, 0x80, 0x80, 0x80, 0x00, 0x01), Limits{}, ErrOpaqueTooLong, 5},
		{"opaque beyond input", hdr(0x45, 0xC3, 0x10, 0x41, 0x01), Limits{}, ErrOpaqueTooLong, 5},
		{"opaque above limit", hdr(0x45, 0xC3, 0x03, 0x41, 0x42, 0x43, 0x01), Limits{MaxOpaqueLen: 2}, ErrOpaqueTooLong, 5},
		{"opaque length truncated", hdr(0x45, 0xC3, 0x81), Limits{}, ErrTruncated, 6},
		{"opaque length 6 bytes", hdr(0x45, 0xC3, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01), Limits{}, ErrBadMBUint32, 6},
		{"depth 100", deep, Limits{}, ErrTooDeep, 4 + 64},
		{"depth over custom limit", hdr(0x45, 0x45, 0x45, 0x01, 0x01, 0x01), Limits{MaxDepth: 2}, ErrTooDeep, 6},
		{"input over size limit", hdr(0x45, 0x01), Limits{MaxSize: 5}, ErrTooLarge, 5},
		{"ENTITY", hdr(0x45, 0x02, 0x41, 0x01), Limits{}, ErrUnsupportedToken, 5},
		{"LITERAL", hdr(0x04, 0x00), Limits{}, ErrUnsupportedToken, 4},
		{"EXT_I_0", hdr(0x45, 0x40, 0x41, 0x00, 0x01), Limits{}, ErrUnsupportedToken, 5},
		{"PI", hdr(0x43, 0x01), Limits{}, ErrUnsupportedToken, 4},
		{"STR_T", hdr(0x45, 0x83, 0x00, 0x01), Limits{}, ErrUnsupportedToken, 5},
		{"EXT_0", hdr(0x45, 0xC0, 0x01), Limits{}, ErrUnsupportedToken, 5},
		{"LITERAL_AC", hdr(0xC4), Limits{}, ErrUnsupportedToken, 4},
		{"attributes bit", hdr(0x85, 0x01), Limits{}, ErrUnsupportedToken, 4},
		{"attributes and content", hdr(0xC5, 0x01, 0x01), Limits{}, ErrUnsupportedToken, 4},
		{"trailing data after root", hdr(0x45, 0x01, 0x45), Limits{}, ErrTrailingData, 6},
		{"trailing data after empty root", hdr(0x05, 0x01), Limits{}, ErrTrailingData, 5},
		{"second root", hdr(0x45, 0x01, 0x00, 0x07, 0x56, 0x01), Limits{}, ErrTrailingData, 6},
		{"string outside root", hdr(0x03, 0x61, 0x00), Limits{}, ErrContentOutsideRoot, 4},
		{"opaque outside root", hdr(0xC3, 0x00), Limits{}, ErrContentOutsideRoot, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			d.SetLimits(tc.limits)
			d.Reset(tc.data)
			var err error
			for i := 0; i < 1000; i++ {
				if _, err = d.Next(); err != nil {
					break
				}
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *SyntaxError", err, err)
			}
			if se.Code != tc.code || se.Offset != tc.offset {
				t.Errorf("got %v (code %d) at %d, want code %d (%v) at %d", se, se.Code, se.Offset, tc.code, tc.code, tc.offset)
			}
			if !strings.HasPrefix(se.Error(), "wbxml: ") || !strings.HasSuffix(se.Error(), "at byte "+itoa(tc.offset)) {
				t.Errorf("Error() = %q", se.Error())
			}
			// Errors are sticky.
			if _, err2 := d.Next(); err2 != err {
				t.Errorf("second Next returned %v, want the same error", err2)
			}
		})
	}
}

func itoa(n int) string {
	var b []byte
	if n == 0 {
		return "0"
	}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestDecodeAccepted(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty root", hdr(0x05), []string{"<AirSync:Sync/>"}},
		{"WBXML 1.1 header", []byte{0x01, 0x01, 0x6A, 0x00, 0x05}, []string{"<AirSync:Sync/>"}},
		{"public id 0 with index", []byte{0x03, 0x00, 0x00, 0x6A, 0x00, 0x05}, []string{"<AirSync:Sync/>"}},
		{"multi-byte public id", []byte{0x03, 0x81, 0x01, 0x6A, 0x00, 0x05}, []string{"<AirSync:Sync/>"}},
		{"string table skipped", []byte{0x03, 0x01, 0x6A, 0x02, 'x', 0, 0x05}, []string{"<AirSync:Sync/>"}},
		{"charset as 2-byte mb_u_int32", []byte{0x03, 0x01, 0x80, 0x6A, 0x00, 0x05}, []string{"<AirSync:Sync/>"}},
		{"empty string", hdr(0x45, 0x03, 0x00, 0x01), []string{"<AirSync:Sync>", "text(Sync)=", "</AirSync:Sync>"}},
		{"opaque", hdr(0x45, 0xC3, 0x02, 0x00, 0xFF, 0x01), []string{"<AirSync:Sync>", "opaque(Sync)=\x00\xff", "</AirSync:Sync>"}},
		{"unknown token kept", hdr(0x7F, 0x01), []string{"<0x00:0x3F>", "</0x00:0x3F>"}},
		{"page switch mid-element", hdr(0x45, 0x00, 0x11, 0x00, 0x07, 0x56, 0x01, 0x01), []string{"<AirSync:Sync>", "<FolderHierarchy:FolderSync>", "</FolderHierarchy:FolderSync>", "</AirSync:Sync>"}},
		{"string of exactly the limit", hdr(0x45, 0x03, 'a', 'b', 0x00, 0x01), []string{"<AirSync:Sync>", "text(Sync)=ab", "</AirSync:Sync>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.data)
			d.SetLimits(Limits{MaxStringLen: 2})
			var got []string
			for {
				tok, err := d.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				got = append(got, tokenLine(tok))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSkip(t *testing.T) {
	d := NewDecoder(readTestdata(t, "vector_a_sync_add_contact.wbxml"))
	var seen []string
	for {
		tok, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tok.Kind == StartTag && tok.Tag == AirSyncCommands {
			depth := d.Depth()
			if err := d.Skip(); err != nil {
				t.Fatal(err)
			}
			if d.Depth() != depth-1 {
				t.Fatalf("depth after Skip = %d, want %d", d.Depth(), depth-1)
			}
			continue
		}
		if tok.Kind == StartTag {
			seen = append(seen, tok.Tag.Name())
		}
	}
	want := "Sync Collections Collection Class SyncKey CollectionId Status"
	if got := strings.Join(seen, " "); got != want {
		t.Errorf("elements outside Commands = %q, want %q", got, want)
	}

	// Skipping the root ends the document.
	d.Reset(readTestdata(t, "vector_g_ping_nochanges.wbxml"))
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	if err := d.Skip(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Errorf("after skipping root: %v, want io.EOF", err)
	}

	// Skip with nothing open is an error; Skip reports errors inside.
	d.Reset(hdr(0x05))
	var se *SyntaxError
	if err := d.Skip(); !errors.As(err, &se) || se.Code != ErrBadSkip {
		t.Errorf("Skip before root: %v", err)
	}
	d.Reset(hdr(0x45, 0x45, 0x03, 0xFF, 0x00, 0x01, 0x01))
	d.Next()
	if err := d.Skip(); !errors.As(err, &se) || se.Code != ErrInvalidUTF8 {
		t.Errorf("Skip over bad string: %v", err)
	}
}

func TestResetReuse(t *testing.T) {
	var d Decoder
	d.SetLimits(Limits{MaxDepth: 3})
	d.Reset(hdr(0x45, 0x45, 0x45, 0x45, 0x01, 0x01, 0x01, 0x01))
	var err error
	for err == nil {
		_, err = d.Next()
	}
	var se *SyntaxError
	if !errors.As(err, &se) || se.Code != ErrTooDeep {
		t.Fatalf("err = %v, want ErrTooDeep", err)
	}
	// Reset clears the error and keeps the limits.
	d.Reset(readTestdata(t, "vector_g_ping_nochanges.wbxml"))
	n := 0
	for {
		_, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Errorf("tokens after Reset = %d, want 5", n)
	}
	if d.limits.MaxDepth != 3 {
		t.Errorf("Reset lost limits: %+v", d.limits)
	}
}

// TestDeepDocumentWithRaisedLimit covers stacks deeper than the inline buffer.
func TestDeepDocumentWithRaisedLimit(t *testing.T) {
	data := hdr()
	for range 200 {
		data = append(data, 0x45)
	}
	for range 200 {
		data = append(data, 0x01)
	}
	d := NewDecoder(data)
	d.SetLimits(Limits{MaxDepth: 500})
	maxDepth := 0
	for {
		_, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		maxDepth = max(maxDepth, d.Depth())
	}
	if maxDepth != 200 {
		t.Errorf("max depth %d, want 200", maxDepth)
	}
}

func TestTokenizeAllocs(t *testing.T) {
	data := readTestdata(t, "sync_response_large.wbxml")
	d := NewDecoder(data)
	n := testing.AllocsPerRun(50, func() {
		d.Reset(data)
		for {
			if _, err := d.Next(); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
		}
	})
	if n != 0 {
		t.Errorf("tokenizing a Sync response allocates %v times, want 0", n)
	}
	n = testing.AllocsPerRun(50, func() {
		d.Reset(data)
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		if err := d.Skip(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Skip allocates %v times, want 0", n)
	}
}
