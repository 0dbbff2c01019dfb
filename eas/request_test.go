package eas

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var reqUpdate = flag.Bool("update-requests", false, "rewrite eas/testdata/requests/*.golden")

// reqPairs is a zero-allocation Headers for alloc tests and benchmarks.
type reqPairs [][2][]byte

func (p reqPairs) Peek(k string) []byte {
	for _, kv := range p {
		if equalFoldASCII(kv[0], k) {
			return kv[1]
		}
	}
	return nil
}

func reqHeaders(kv ...string) reqPairs {
	var p reqPairs
	for i := 0; i+1 < len(kv); i += 2 {
		p = append(p, [2][]byte{[]byte(kv[i]), []byte(kv[i+1])})
	}
	return p
}

const reqPath = "/Microsoft-Server-ActiveSync"

// reqView is a comparable rendering of every exported field.
type reqView struct {
	Method, Command, CommandName                             string
	CommandCode                                              uint8
	Version                                                  Version
	Base64                                                   bool
	Locale                                                   uint16
	PolicyKey                                                uint32
	HasPolicyKey                                             bool
	User, DeviceID, DeviceType                               string
	AttachmentName, CollectionID, ItemID, LongID, Occurrence string
	SaveInSent, AcceptMultiPart                              bool
	UserAgent, ContentType                                   string
	AuthScheme, AuthUser, AuthDomain, AuthLogin, Password    string
}

func viewOf(r *Request) reqView {
	return reqView{
		Method: string(r.Method), Command: r.Command.String(), CommandName: string(r.CommandName),
		CommandCode: r.CommandCode, Version: r.Version, Base64: r.Base64, Locale: r.Locale,
		PolicyKey: r.PolicyKey, HasPolicyKey: r.HasPolicyKey,
		User: string(r.User), DeviceID: string(r.DeviceID), DeviceType: string(r.DeviceType),
		AttachmentName: string(r.AttachmentName), CollectionID: string(r.CollectionID),
		ItemID: string(r.ItemID), LongID: string(r.LongID), Occurrence: string(r.Occurrence),
		SaveInSent: r.SaveInSent, AcceptMultiPart: r.AcceptMultiPart,
		UserAgent: string(r.UserAgent), ContentType: string(r.ContentType),
		AuthScheme: string(r.AuthScheme), AuthUser: string(r.AuthUser), AuthDomain: string(r.AuthDomain),
		AuthLogin: string(r.AuthLogin), Password: string(r.Password()),
	}
}

func mustParse(t testing.TB, method, path, query string, h Headers) *Request {
	t.Helper()
	r := new(Request)
	if err := r.Parse([]byte(method), []byte(path), []byte(query), h); err != nil {
		t.Fatalf("Parse(%s %s?%s): %v", method, path, query, err)
	}
	return r
}

// TestSpecVectors decodes the two base64 vectors of PROTOCOL.md §6.1 I.
func TestSpecVectors(t *testing.T) {
	tests := []struct {
		query string
		want  reqView
	}{
		{
			// MS-ASHTTP §2.2.1.1.1.1 example.
			query: "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
			want: reqView{Method: "POST", Command: "Sync", CommandName: "Sync", CommandCode: 0, Version: V140,
				Base64: true, Locale: 0x0409, DeviceID: "v140Device", DeviceType: "SmartPhone"},
		},
		{
			// Constructed: 14.1 Ping from an iPad with a policy key and User.
			query: "jRIJBBBBcHBsRE1QTDY5UFpGMThQBGBI6k0EaVBhZAgEamRvZQ==",
			want: reqView{Method: "POST", Command: "Ping", CommandName: "Ping", CommandCode: 18, Version: V141,
				Base64: true, Locale: 0x0409, PolicyKey: 1307199584, HasPolicyKey: true,
				User: "jdoe", DeviceID: "ApplDMPL69PZF18P", DeviceType: "iPad"},
		},
	}
	for _, tt := range tests {
		r := mustParse(t, "POST", reqPath, tt.query, nil)
		if got := viewOf(r); got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.query, got, tt.want)
		}
		// The encoder reproduces the vector byte for byte.
		if got := string(AppendBase64Query(nil, r)); got != tt.query {
			t.Errorf("AppendBase64Query = %s, want %s", got, tt.query)
		}
	}
	// The spec's plain-text equivalent of the first vector parses to the
	// same request (PROTOCOL.md §1.2).
	p := mustParse(t, "POST", reqPath, "Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone",
		reqHeaders("MS-ASProtocolVersion", "14.0", "Content-Type", "application/vnd.ms-sync.wbxml"))
	if p.Version != V140 || p.Command != CmdSync || string(p.DeviceID) != "v140Device" ||
		string(p.User) != "rmjones" || string(p.ContentType) != "application/vnd.ms-sync.wbxml" {
		t.Errorf("plain equivalent: %+v", viewOf(p))
	}
}

// reqSample builds a request for cmd with the parameters that command uses.
func reqSample(cmd Command, v Version) *Request {
	r := &Request{Method: []byte("POST"), Command: cmd, CommandCode: byte(cmd), Version: v,
		User: []byte("CORP\\jdoe"), DeviceID: []byte("ApplDMPL69PZF18P"), DeviceType: []byte("iPad"),
		HasPolicyKey: cmd != CmdProvision}
	if r.HasPolicyKey {
		r.PolicyKey = 3942919513
	}
	switch cmd {
	case CmdGetAttachment:
		r.AttachmentName = []byte("5:1:0/attach ment+1")
	case CmdSmartForward, CmdSmartReply:
		r.CollectionID, r.ItemID, r.Occurrence = []byte("mail/INBOX"), []byte("5:17"), []byte("2026-11-27T10:00:00.000Z")
		r.SaveInSent = true
	case CmdSendMail:
		r.SaveInSent = true
	case CmdItemOperations:
		r.AcceptMultiPart = true
	case CmdSearch:
		r.LongID = []byte("RgAAAAB%xyz")
	}
	return r
}

// TestBothForms checks that every command with a base64 code, at every
// version that may use the base64 form, parses to the same request from the
// plain query + headers as from the base64 query.
func TestBothForms(t *testing.T) {
	versions := []Version{V121, V140, V141, V160, V161}
	n := 0
	for code := 0; code <= int(CmdValidateCert); code++ {
		cmd, ok := CommandFromCode(byte(code))
		if !ok {
			continue
		}
		for _, v := range versions {
			n++
			src := reqSample(cmd, v)
			b64 := string(AppendBase64Query(nil, src))
			if b64 == "" {
				t.Fatalf("%v %v: not encodable", cmd, v)
			}
			plain := string(AppendPlainQuery(nil, src))
			h := reqHeaders("MS-ASProtocolVersion", v.String(), "X-MS-PolicyKey",
				strconv.FormatUint(uint64(src.PolicyKey), 10), "User-Agent", "iOS/18.0 (22A3354) dataaccessd/1.0")
			if !src.HasPolicyKey {
				h = h[:1:1]
				h = append(h, [2][]byte{[]byte("User-Agent"), []byte("iOS/18.0 (22A3354) dataaccessd/1.0")})
			}
			hb := reqHeaders("User-Agent", "iOS/18.0 (22A3354) dataaccessd/1.0",
				"MS-ASProtocolVersion", v.String()) // a header that agrees with the query is allowed
			rp := mustParse(t, "POST", reqPath, plain, h)
			rb := mustParse(t, "POST", reqPath, b64, hb)
			if !rb.Base64 || rp.Base64 || rb.Locale != 0 {
				t.Errorf("%v %v: Base64 flags wrong", cmd, v)
			}
			gp, gb := viewOf(rp), viewOf(rb)
			gb.Base64 = false
			if gp != gb {
				t.Errorf("%v %v:\nplain  %s\n %+v\nbase64 %s\n %+v", cmd, v, plain, gp, b64, gb)
			}
			want := viewOf(src)
			want.UserAgent = "iOS/18.0 (22A3354) dataaccessd/1.0"
			want.CommandName = cmd.String()
			if gp != want {
				t.Errorf("%v %v: plain\n got %+v\nwant %+v", cmd, v, gp, want)
			}
		}
	}
	if n != 19*5 {
		t.Errorf("checked %d combinations, want %d", n, 19*5)
	}
	// 2.5 and 12.0 must use the plain form.
	for _, v := range []Version{V25, V120} {
		src := reqSample(CmdFolderSync, v)
		plain := string(AppendPlainQuery(nil, src))
		r := mustParse(t, "POST", reqPath, plain, reqHeaders("MS-ASProtocolVersion", v.String(), "X-MS-PolicyKey", "3942919513"))
		want := viewOf(src)
		want.CommandName = "FolderSync"
		if got := viewOf(r); got != want {
			t.Errorf("%v:\n got %+v\nwant %+v", v, got, want)
		}
		// The base64 form is refused for these versions.
		b := string(AppendBase64Query(nil, src))
		var r2 Request
		if err := r2.Parse([]byte("POST"), []byte(reqPath), []byte(b), nil); !errors.Is(err, ErrBadVersion) {
			t.Errorf("%v base64: err = %v, want ErrBadVersion", v, err)
		}
	}
}

func TestParsePlainDetails(t *testing.T) {
	tests := []struct {
		name  string
		query string
		h     Headers
		check func(*Request) bool
	}{
		{"case-insensitive names", "cmd=Sync&USER=a&deviceid=D1&DEVICETYPE=iPhone", nil,
			func(r *Request) bool { return r.Command == CmdSync && string(r.User) == "a" }},
		{"lower-case command", "Cmd=foldersync&DeviceId=D1&DeviceType=T", nil,
			func(r *Request) bool { return r.Command == CmdFolderSync && string(r.CommandName) == "foldersync" }},
		{"Find is known", "Cmd=Find&DeviceId=D1&DeviceType=T", nil,
			func(r *Request) bool { return r.Command == CmdFind && r.CommandCode == 0 }},
		{"unknown command passes", "Cmd=Frobnicate&DeviceId=D1&DeviceType=T", nil,
			func(r *Request) bool { return r.Command == CmdUnknown && string(r.CommandName) == "Frobnicate" }},
		{"plus is space, %40 is @", "Cmd=Sync&User=j+doe%40corp.example.com&DeviceId=D1&DeviceType=T", nil,
			func(r *Request) bool { return string(r.User) == "j doe@corp.example.com" }},
		{"percent-encoded backslash", "Cmd=Sync&User=CORP%5Cjdoe&DeviceId=D1&DeviceType=T", nil,
			func(r *Request) bool { return string(r.User) == `CORP\jdoe` }},
		{"unknown params ignored", "Cmd=Sync&Foo=%zz&DeviceId=D1&&DeviceType=T&Bar=", nil,
			func(r *Request) bool { return r.Command == CmdSync }},
		{"policy key 0", "Cmd=Provision&DeviceId=D1&DeviceType=T", reqHeaders("X-MS-PolicyKey", "0"),
			func(r *Request) bool { return r.HasPolicyKey && r.PolicyKey == 0 }},
		{"policy key max", "Cmd=Sync&DeviceId=D1&DeviceType=T", reqHeaders("X-MS-PolicyKey", "4294967295"),
			func(r *Request) bool { return r.HasPolicyKey && r.PolicyKey == 4294967295 }},
		{"no version header", "Cmd=Sync&DeviceId=D1&DeviceType=T", nil,
			func(r *Request) bool { return r.Version == 0 && !r.HasPolicyKey }},
		{"multipart header", "Cmd=ItemOperations&DeviceId=D1&DeviceType=T", reqHeaders("MS-ASAcceptMultiPart", "T"),
			func(r *Request) bool { return r.AcceptMultiPart }},
		{"multipart header F", "Cmd=ItemOperations&DeviceId=D1&DeviceType=T", reqHeaders("MS-ASAcceptMultiPart", "F"),
			func(r *Request) bool { return !r.AcceptMultiPart }},
		{"SaveInSent=F", "Cmd=SendMail&DeviceId=D1&DeviceType=T&SaveInSent=F", nil,
			func(r *Request) bool { return !r.SaveInSent }},
		{"empty User is absent", "Cmd=Sync&User=&DeviceId=D1&DeviceType=T", nil,
			func(r *Request) bool { return r.User == nil }},
		{"32-char device id with - and _", "Cmd=Sync&DeviceId=0123456789abcdef-_0123456789ABCD&DeviceType=T", nil,
			func(r *Request) bool { return len(r.DeviceID) == 32 }},
		{"base64 URL alphabet and %2B/%3D", "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", nil,
			func(r *Request) bool { return r.Base64 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, "POST", reqPath, tt.query, tt.h)
			if !tt.check(r) {
				t.Errorf("unexpected result %+v", viewOf(r))
			}
		})
	}
}

// TestBase64Variants: URL-safe alphabet, percent-encoded '+', '/', '='
// and missing padding decode to the same request.
func TestBase64Variants(t *testing.T) {
	src := reqSample(CmdSmartReply, V141)
	src.User = []byte("j\xfb\xff\xfe")
	std := string(AppendBase64Query(nil, src))
	for i := 0; i < 3 && !strings.HasSuffix(std, "="); i++ {
		src.User = append(src.User, '?')
		std = string(AppendBase64Query(nil, src))
	}
	if !strings.Contains(std, "+") || !strings.Contains(std, "/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("test vector lacks + / or padding: %s", std)
	}
	want := viewOf(mustParse(t, "POST", reqPath, std, nil))
	variants := map[string]string{
		"url":     strings.NewReplacer("+", "-", "/", "_").Replace(std),
		"pct":     strings.NewReplacer("+", "%2B", "/", "%2f", "=", "%3D").Replace(std),
		"nopad":   strings.TrimRight(std, "="),
		"urlnopd": strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(std), "="),
	}
	for name, q := range variants {
		if got := viewOf(mustParse(t, "POST", reqPath, q, nil)); got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
}

func TestBase64Details(t *testing.T) {
	enc := func(b ...byte) string { return base64.StdEncoding.EncodeToString(b) }
	head := []byte{141, 0x09, 0x09, 0x04, 2, 'D', '1', 0, 1, 'T'}
	with := func(extra ...byte) string { return enc(append(append([]byte{}, head...), extra...)...) }
	// Unknown command code: CmdUnknown, no error.
	r := mustParse(t, "POST", reqPath, enc(161, 23, 9, 4, 2, 'D', '1', 0, 1, 'T'), nil)
	if r.Command != CmdUnknown || r.CommandCode != 23 || string(r.CommandName) != "Code23" {
		t.Errorf("unknown code: %+v", viewOf(r))
	}
	// Deprecated tags 2 and 5 are skipped; Options bits.
	r = mustParse(t, "POST", reqPath, with(2, 3, 'a', 'b', 'c', 5, 1, 'x', 7, 1, 0x03, 8, 2, 'j', 'd'), nil)
	if !r.SaveInSent || !r.AcceptMultiPart || string(r.User) != "jd" || r.CollectionID != nil {
		t.Errorf("params: %+v", viewOf(r))
	}
	// Binary GUID device id (16 bytes with non-printable bytes) is kept raw.
	guid := []byte{0x6f, 0x24, 0xca, 0xd5, 0x99, 0xa5, 0xbf, 0x1a, 0x69, 0x02, 0x46, 0xb8, 0xc6, 0x8f, 0xae, 0x8d}
	raw := append(append([]byte{140, 0, 9, 4, 16}, guid...), 0, 3, 'P', 'P', 'C')
	r = mustParse(t, "POST", reqPath, enc(raw...), nil)
	if string(r.DeviceID) != string(guid) {
		t.Errorf("binary device id: %x", r.DeviceID)
	}
	js, _ := json.Marshal(r)
	if !strings.Contains(string(js), `"device_id_hex":"6f24cad599a5bf1a690246b8c68fae8d"`) {
		t.Errorf("JSON lacks device_id_hex: %s", js)
	}
}

func TestPathAndMethod(t *testing.T) {
	ok := []string{"/Microsoft-Server-ActiveSync", "/microsoft-server-activesync", "/Microsoft-Server-ActiveSync/",
		"/Microsoft-Server-ActiveSync/default.eas", "/MICROSOFT-SERVER-ACTIVESYNC/Proxy/default.eas",
		"/Microsoft-Server-ActiveSync/proxy/Default.EAS"}
	for _, p := range ok {
		mustParse(t, "POST", p, "Cmd=Sync&DeviceId=D1&DeviceType=T", nil)
	}
	bad := []string{"", "/", "/Microsoft-Server-ActiveSyncX", "/Microsoft-Server-ActiveSync/x",
		"/autodiscover/autodiscover.xml", "/Microsoft-Server-ActiveSync/default.eas/", "/Microsoft-Server-ActiveSync/Proxy"}
	for _, p := range bad {
		var r Request
		err := r.Parse([]byte("POST"), []byte(p), []byte("Cmd=Sync&DeviceId=D1&DeviceType=T"), nil)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Code != ErrNotEAS || pe.HTTPStatus != 404 {
			t.Errorf("path %q: err = %v", p, err)
		}
	}
	// OPTIONS: no query needed; Command is CmdOptions.
	r := mustParse(t, "OPTIONS", reqPath, "", reqHeaders("User-Agent", "Apple-iPhone4C1/1002.329"))
	if r.Command != CmdOptions || string(r.CommandName) != "OPTIONS" || string(r.UserAgent) != "Apple-iPhone4C1/1002.329" {
		t.Errorf("OPTIONS: %+v", viewOf(r))
	}
	// OPTIONS with a query keeps the identity fields.
	r = mustParse(t, "OPTIONS", reqPath, "User=jdoe&DeviceId=D1&DeviceType=T", nil)
	if r.Command != CmdOptions || string(r.DeviceID) != "D1" || string(r.User) != "jdoe" {
		t.Errorf("OPTIONS with query: %+v", viewOf(r))
	}
	// OPTIONS with a malformed query is still accepted (never blocked).
	r = mustParse(t, "OPTIONS", reqPath, "Cmd=Sync&DeviceId=a,b", reqHeaders("MS-ASProtocolVersion", "99.9"))
	if r.Command != CmdOptions || r.DeviceID != nil || r.Version != 0 {
		t.Errorf("OPTIONS with bad query: %+v", viewOf(r))
	}
	r = mustParse(t, "OPTIONS", reqPath, "", reqHeaders("MS-ASProtocolVersion", "nope"))
	if r.Version != 0 {
		t.Errorf("OPTIONS with bad version: %+v", viewOf(r))
	}
}

// TestMalformed: each bad request gives an exact code, field and offset.
func TestMalformed(t *testing.T) {
	enc := func(b ...byte) string { return base64.StdEncoding.EncodeToString(b) }
	head := []byte{141, 0x09, 0x09, 0x04, 2, 'D', '1', 0, 1, 'T'} // 10 bytes
	with := func(extra ...byte) string { return enc(append(append([]byte{}, head...), extra...)...) }
	const ok = "Cmd=Sync&DeviceId=D1&DeviceType=T"
	tests := []struct {
		name, method, path, query string
		h                         Headers
		code                      ErrorCode
		field                     string
		offset                    int
	}{
		{"not eas path", "POST", "/owa/", ok, nil, ErrNotEAS, "path", 1},
		{"path suffix", "POST", "/Microsoft-Server-ActiveSync/foo", ok, nil, ErrNotEAS, "path", 29},
		{"GET", "GET", reqPath, ok, nil, ErrMethod, "method", 0},
		{"lower-case post", "post", reqPath, ok, nil, ErrMethod, "method", 0},
		{"empty query", "POST", reqPath, "", nil, ErrMissingCmd, "Cmd", 0},
		{"no Cmd", "POST", reqPath, "DeviceId=D1&DeviceType=T", nil, ErrMissingCmd, "Cmd", 24},
		{"empty Cmd", "POST", reqPath, "Cmd=&DeviceId=D1&DeviceType=T", nil, ErrMissingCmd, "Cmd", 4},
		{"Cmd digits", "POST", reqPath, "DeviceId=D1&Cmd=Sync2&DeviceType=T", nil, ErrBadCommand, "Cmd", 16},
		{"no DeviceId", "POST", reqPath, "Cmd=Sync&DeviceType=T", nil, ErrMissingDeviceID, "DeviceId", 21},
		{"empty DeviceId", "POST", reqPath, "Cmd=Sync&DeviceId=&DeviceType=T", nil, ErrInvalidDeviceID, "DeviceId", 18},
		{"DeviceId comma", "POST", reqPath, "Cmd=Sync&DeviceId=a,b&DeviceType=T", nil, ErrInvalidDeviceID, "DeviceId", 18},
		{"DeviceId space via +", "POST", reqPath, "Cmd=Sync&DeviceId=a+b&DeviceType=T", nil, ErrInvalidDeviceID, "DeviceId", 18},
		{"DeviceId 33 chars", "POST", reqPath, "Cmd=Sync&DeviceId=" + strings.Repeat("a", 33) + "&DeviceType=T", nil, ErrInvalidDeviceID, "DeviceId", 18},
		{"no DeviceType", "POST", reqPath, "Cmd=Sync&DeviceId=D1", nil, ErrMissingDeviceType, "DeviceType", 20},
		{"empty DeviceType", "POST", reqPath, "Cmd=Sync&DeviceId=D1&DeviceType=", nil, ErrInvalidDeviceType, "DeviceType", 32},
		{"DeviceType space", "POST", reqPath, "Cmd=Sync&DeviceId=D1&DeviceType=i%20Pad", nil, ErrInvalidDeviceType, "DeviceType", 32},
		{"DeviceType 65", "POST", reqPath, "Cmd=Sync&DeviceId=D1&DeviceType=" + strings.Repeat("T", 65), nil, ErrInvalidDeviceType, "DeviceType", 32},
		{"duplicate DeviceId", "POST", reqPath, "Cmd=Sync&DeviceId=D1&deviceid=D2&DeviceType=T", nil, ErrDuplicateParam, "DeviceId", 21},
		{"duplicate Cmd", "POST", reqPath, "Cmd=Sync&Cmd=Ping&DeviceId=D1&DeviceType=T", nil, ErrDuplicateParam, "Cmd", 9},
		// Names and values ASP.NET would read differently (issue 12).
		{"percent-encoded name", "POST", reqPath, "Cmd=Sync&Device%49d=EVIL&DeviceId=D1&DeviceType=T", nil, ErrBadParamName, "query", 15},
		{"percent-encoded Cmd name", "POST", reqPath, "Cm%64=Sync&DeviceId=D1&DeviceType=T", nil, ErrBadParamName, "query", 2},
		{"plus in name", "POST", reqPath, "Cmd=Sync&DeviceId+=X&DeviceId=D1&DeviceType=T", nil, ErrBadParamName, "query", 17},
		{"dotless i in name", "POST", reqPath, "Cmd=Sync&Dev\xc4\xb1ceId=X&DeviceId=D1&DeviceType=T", nil, ErrBadParamName, "query", 12},
		{"pair without =", "POST", reqPath, "Cmd=Sync&DeviceId=D1&DeviceType=T&Bar", nil, ErrBadParamName, "query", 34},
		{"empty name", "POST", reqPath, "Cmd=Sync&=x&DeviceId=D1&DeviceType=T", nil, ErrBadParamName, "query", 9},
		{"%u escape", "POST", reqPath, "Cmd=Sync&User=%u0061lice&DeviceId=D1&DeviceType=T", nil, ErrBadPercentEncoding, "User", 14},
		{"overlong UTF-8 in User", "POST", reqPath, "Cmd=Sync&User=alice%C0%AF&DeviceId=D1&DeviceType=T", nil, ErrBadValue, "User", 14},
		{"lone continuation byte", "POST", reqPath, "Cmd=Sync&User=%80&DeviceId=D1&DeviceType=T", nil, ErrBadValue, "User", 14},
		{"UTF-16 surrogate in UTF-8", "POST", reqPath, "Cmd=Sync&User=%ED%A0%80&DeviceId=D1&DeviceType=T", nil, ErrBadValue, "User", 14},
		{"bad percent", "POST", reqPath, "Cmd=Sync&User=a%4&DeviceId=D1&DeviceType=T", nil, ErrBadPercentEncoding, "User", 15},
		{"bad percent hex", "POST", reqPath, "Cmd=Sync&User=%zz&DeviceId=D1&DeviceType=T", nil, ErrBadPercentEncoding, "User", 14},
		{"control char in User", "POST", reqPath, "Cmd=Sync&User=a%0Ab&DeviceId=D1&DeviceType=T", nil, ErrBadValue, "User", 14},
		{"User too long", "POST", reqPath, "Cmd=Sync&User=" + strings.Repeat("u", 321) + "&DeviceId=D1&DeviceType=T", nil, ErrOversize, "User", 14},
		{"ItemId too long", "POST", reqPath, ok + "&ItemId=" + strings.Repeat("i", 1025), nil, ErrOversize, "ItemId", 41},
		{"SaveInSent=yes", "POST", reqPath, ok + "&SaveInSent=yes", nil, ErrBadValue, "SaveInSent", 45},
		{"query too long", "POST", reqPath, ok + "&X=" + strings.Repeat("x", 4096), nil, ErrOversize, "query", 4096},
		{"bad version header", "POST", reqPath, ok, reqHeaders("MS-ASProtocolVersion", "14"), ErrBadVersion, "MS-ASProtocolVersion", 0},
		{"unknown version header", "POST", reqPath, ok, reqHeaders("MS-ASProtocolVersion", "15.0"), ErrBadVersion, "MS-ASProtocolVersion", 0},
		{"policy key letters", "POST", reqPath, ok, reqHeaders("X-MS-PolicyKey", "12a4"), ErrBadPolicyKey, "X-MS-PolicyKey", 2},
		{"policy key overflow", "POST", reqPath, ok, reqHeaders("X-MS-PolicyKey", "4294967296"), ErrBadPolicyKey, "X-MS-PolicyKey", 9},
		{"policy key negative", "POST", reqPath, ok, reqHeaders("X-MS-PolicyKey", "-1"), ErrBadPolicyKey, "X-MS-PolicyKey", 0},
		// Base64 form.
		{"b64 bad char", "POST", reqPath, "jAAJBAp2M!QwRGV2", nil, ErrBadBase64, "query", 9},
		{"b64 one char over", "POST", reqPath, "jAAJB", nil, ErrBadBase64, "query", 5},
		{"b64 data after pad", "POST", reqPath, "jAA%3DB", nil, ErrBadBase64, "query", 6},
		{"b64 three pads", "POST", reqPath, "jA===", nil, ErrBadBase64, "query", 2},
		{"b64 bad percent", "POST", reqPath, "jAAJ%41", nil, ErrBadBase64, "query", 4},
		{"b64 version 2.5", "POST", reqPath, enc(25, 0, 9, 4, 1, 'D', 0, 1, 'T'), nil, ErrBadVersion, "ProtocolVersion", 0},
		{"b64 version 12.0", "POST", reqPath, enc(120, 0, 9, 4, 1, 'D', 0, 1, 'T'), nil, ErrBadVersion, "ProtocolVersion", 0},
		{"b64 version 15.0", "POST", reqPath, enc(150, 0, 9, 4, 1, 'D', 0, 1, 'T'), nil, ErrBadVersion, "ProtocolVersion", 0},
		{"b64 only version", "POST", reqPath, enc(141), nil, ErrTruncated, "CommandCode", 1},
		{"b64 no locale", "POST", reqPath, enc(141, 0, 9), nil, ErrTruncated, "Locale", 2},
		{"b64 no device id length", "POST", reqPath, enc(141, 0, 9, 4), nil, ErrTruncated, "DeviceId", 4},
		{"b64 device id past end", "POST", reqPath, enc(141, 0, 9, 4, 10, 'a', 'b'), nil, ErrTruncated, "DeviceId", 4},
		{"b64 empty device id", "POST", reqPath, enc(141, 0, 9, 4, 0, 0, 1, 'T'), nil, ErrInvalidDeviceID, "DeviceId", 4},
		{"b64 device id 33", "POST", reqPath, enc(append(append([]byte{141, 0, 9, 4, 33}, strings.Repeat("a", 33)...), 0, 1, 'T')...), nil, ErrInvalidDeviceID, "DeviceId", 4},
		{"b64 device id comma", "POST", reqPath, enc(141, 0, 9, 4, 3, 'a', ',', 'b', 0, 1, 'T'), nil, ErrInvalidDeviceID, "DeviceId", 4},
		{"b64 no policy key length", "POST", reqPath, enc(141, 0, 9, 4, 2, 'D', '1'), nil, ErrTruncated, "PolicyKey", 7},
		{"b64 policy key length 3", "POST", reqPath, enc(141, 0, 9, 4, 2, 'D', '1', 3, 1, 2, 3, 1, 'T'), nil, ErrBadPolicyKey, "PolicyKey", 7},
		{"b64 policy key short", "POST", reqPath, enc(141, 0, 9, 4, 2, 'D', '1', 4, 1, 2), nil, ErrTruncated, "PolicyKey", 7},
		{"b64 no device type", "POST", reqPath, enc(141, 0, 9, 4, 2, 'D', '1', 0), nil, ErrTruncated, "DeviceType", 8},
		{"b64 empty device type", "POST", reqPath, enc(141, 0, 9, 4, 2, 'D', '1', 0, 0), nil, ErrInvalidDeviceType, "DeviceType", 8},
		{"b64 device type past end", "POST", reqPath, enc(141, 0, 9, 4, 2, 'D', '1', 4, 1, 2, 3, 4, 9, 'T'), nil, ErrTruncated, "DeviceType", 12},
		{"b64 device type space", "POST", reqPath, enc(141, 0, 9, 4, 2, 'D', '1', 0, 2, 'T', ' '), nil, ErrInvalidDeviceType, "DeviceType", 8},
		{"b64 param without length", "POST", reqPath, with(8), nil, ErrTruncated, "User", 11},
		{"b64 param past end", "POST", reqPath, with(8, 5, 'j', 'd'), nil, ErrTruncated, "User", 11},
		{"b64 unknown tag", "POST", reqPath, with(9, 1, 'x'), nil, ErrUnknownParam, "Parameter", 10},
		{"b64 duplicate tag", "POST", reqPath, with(8, 1, 'a', 3, 1, 'i', 8, 1, 'b'), nil, ErrDuplicateParam, "User", 16},
		// A base64 query is one reading; a header that says otherwise is a second (issue 12).
		{"b64 with another version header", "POST", reqPath, with(), reqHeaders("MS-ASProtocolVersion", "2.5"), ErrBadVersion, "MS-ASProtocolVersion", 0},
		{"b64 with a policy key header but none in the query", "POST", reqPath, with(), reqHeaders("X-MS-PolicyKey", "7"), ErrBadPolicyKey, "X-MS-PolicyKey", 0},
		{"b64 options two bytes", "POST", reqPath, with(7, 2, 1, 0), nil, ErrBadValue, "Options", 11},
		{"b64 control in ItemId", "POST", reqPath, with(3, 2, 'a', 0), nil, ErrBadValue, "ItemId", 12},
		// Authorization.
		{"basic bad base64", "POST", reqPath, ok, reqHeaders("Authorization", "Basic amRv*ZTpzZWNyZXQ="), ErrBadAuthorization, "Authorization", 10},
		{"basic no colon", "POST", reqPath, ok, reqHeaders("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("jdoe"))), ErrBadAuthorization, "Authorization", 6},
		{"basic empty user", "POST", reqPath, ok, reqHeaders("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(":secret"))), ErrBadAuthorization, "Authorization", 6},
		{"basic empty", "POST", reqPath, ok, reqHeaders("Authorization", "Basic   "), ErrBadAuthorization, "Authorization", 8},
		{"authorization too long", "POST", reqPath, ok, reqHeaders("Authorization", "Basic "+strings.Repeat("A", 2048)), ErrOversize, "Authorization", 2048},
	}
	if len(tests) < 25 {
		t.Fatalf("only %d cases", len(tests))
	}
	seen := map[ErrorCode]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			err := r.Parse([]byte(tt.method), []byte(tt.path), []byte(tt.query), tt.h)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			seen[pe.Code] = true
			if pe.Code != tt.code || pe.Field != tt.field || pe.Offset != tt.offset {
				t.Errorf("got %v/%s/%d (%v), want %v/%s/%d", pe.Code, pe.Field, pe.Offset, err, tt.code, tt.field, tt.offset)
			}
			if !errors.Is(err, tt.code) {
				t.Errorf("errors.Is(err, %v) = false", tt.code)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "amRv") {
				t.Errorf("error leaks credentials: %v", err)
			}
		})
	}
	for c := ErrNotEAS; c <= ErrUnknownParam; c++ {
		if !seen[c] {
			t.Errorf("no malformed case for %v", c)
		}
	}
}

func TestParseErrorFormat(t *testing.T) {
	var r Request
	err := r.Parse([]byte("POST"), []byte(reqPath), []byte("Cmd=Sync&User=jdoe&DeviceType=iPhone"), nil)
	if got, want := err.Error(), "eas: DeviceId: missing (offset 36)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	pe := err.(*ParseError)
	if pe.Status != 108 || pe.HTTPStatus != 400 {
		t.Errorf("statuses %d/%d", pe.Status, pe.HTTPStatus)
	}
	err = r.Parse([]byte("POST"), []byte(reqPath), []byte("Cmd=Sync&DeviceId=D1"), nil)
	if pe := err.(*ParseError); pe.Status != 109 {
		t.Errorf("DeviceType status %d", pe.Status)
	}
	if ErrMissingDeviceID.String() != "missing_device_id" || ErrorCode(200).String() != "code200" {
		t.Errorf("ErrorCode.String")
	}
}

func TestBasicIdentity(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, auth                         string
		code                               ErrorCode
		scheme, login, user, domain, passw string
	}{
		{"netbios", basic(`CORP\jdoe:s3cr:et`), ErrNone, "Basic", `CORP\jdoe`, "jdoe", "CORP", "s3cr:et"},
		{"upn", basic("jdoe@corp.example.com:pw"), ErrNone, "Basic", "jdoe@corp.example.com", "jdoe", "corp.example.com", "pw"},
		{"plain user", basic("jdoe:pw"), ErrNone, "Basic", "jdoe", "jdoe", "", "pw"},
		{"empty password", basic("jdoe:"), ErrNone, "Basic", "jdoe", "jdoe", "", ""},
		{"netbios + upn", basic(`CORP\jdoe@corp.example.com:pw`), ErrNone, "Basic", `CORP\jdoe@corp.example.com`, "jdoe", "corp.example.com", "pw"},
		{"lower-case scheme, no padding", "basic " + base64.RawStdEncoding.EncodeToString([]byte("ab:c")), ErrNone, "basic", "ab", "ab", "", "c"},
		{"utf-8 user", basic("jürgen:pw"), ErrNone, "Basic", "jürgen", "jürgen", "", "pw"},
		{"bearer", "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.x", ErrNone, "Bearer", "", "", "", ""},
		{"negotiate", "Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXa", ErrNone, "Negotiate", "", "", "", ""},
		{"bad base64", "Basic !!!!", ErrBadAuthorization, "Basic", "", "", "", ""},
		{"url alphabet refused", "Basic " + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString([]byte("u:\xfb\xff"))), ErrBadAuthorization, "Basic", "", "", "", ""},
		{"no colon", basic("jdoe"), ErrBadAuthorization, "Basic", "", "", "", ""},
		{"empty user", basic(":pw"), ErrBadAuthorization, "Basic", "", "", "", ""},
		{"control char", basic("jd\x00oe:pw"), ErrBadAuthorization, "Basic", "", "", "", ""},
		{"scheme only", "Basic", ErrBadAuthorization, "Basic", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			err := r.Parse([]byte("POST"), []byte(reqPath), []byte("Cmd=Sync&DeviceId=D1&DeviceType=T"),
				reqHeaders("Authorization", tt.auth))
			if tt.code != ErrNone {
				if !errors.Is(err, tt.code) {
					t.Fatalf("err = %v, want %v", err, tt.code)
				}
				if r.Password() != nil || r.AuthUser != nil {
					t.Errorf("identity kept after error")
				}
				if r.Command != CmdSync || string(r.DeviceID) != "D1" {
					t.Errorf("other fields not filled on auth error")
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if string(r.AuthScheme) != tt.scheme || string(r.AuthLogin) != tt.login || string(r.AuthUser) != tt.user ||
				string(r.AuthDomain) != tt.domain || string(r.Password()) != tt.passw {
				t.Errorf("got scheme %q login %q user %q domain %q pw %q", r.AuthScheme, r.AuthLogin, r.AuthUser, r.AuthDomain, r.Password())
			}
			if err != nil && tt.passw != "" && strings.Contains(err.Error(), tt.passw) {
				t.Errorf("error leaks password")
			}
		})
	}
}

func TestEffectiveUserAndJSON(t *testing.T) {
	auth := reqHeaders("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(`CORP\jdoe:Sup3rSecret!`)))
	r := mustParse(t, "POST", reqPath, "jRIJBBBBcHBsRE1QTDY5UFpGMThQBGBI6k0EaVBhZAgEamRvZQ==", auth)
	if string(r.EffectiveUser()) != "jdoe" || !SameUser(r.User, r.AuthLogin) {
		t.Errorf("EffectiveUser = %q", r.EffectiveUser())
	}
	r = mustParse(t, "POST", reqPath, "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", auth)
	if string(r.EffectiveUser()) != "jdoe" || r.User != nil {
		t.Errorf("EffectiveUser from auth = %q", r.EffectiveUser())
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(js)
	for _, leak := range []string{"Sup3rSecret", "Q09SUFxqZG9l", "password", "authorization"} {
		if strings.Contains(s, leak) {
			t.Errorf("JSON contains %q: %s", leak, s)
		}
	}
	for _, want := range []string{`"command":"Sync"`, `"version":"14.0"`, `"auth_user":"jdoe"`, `"auth_domain":"CORP"`,
		`"device_id":"v140Device"`, `"locale":1033`, `"command_code":0`, `"effective_user":"jdoe"`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s: %s", want, s)
		}
	}
}

func TestSplitUser(t *testing.T) {
	tests := []struct{ in, user, domain string }{
		{`CORP\jdoe`, "jdoe", "CORP"},
		{"jdoe@corp.example.com", "jdoe", "corp.example.com"},
		{"jdoe", "jdoe", ""},
		{`CORP\jdoe@corp.example.com`, "jdoe", "corp.example.com"},
		{`"a@b"@corp.example.com`, `"a@b"`, "corp.example.com"},
		{`\jdoe`, "jdoe", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		u, d := SplitUser([]byte(tt.in))
		if string(u) != tt.user || string(d) != tt.domain {
			t.Errorf("SplitUser(%q) = %q, %q; want %q, %q", tt.in, u, d, tt.user, tt.domain)
		}
	}
}

func TestSameUser(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`CORP\jdoe`, "jdoe", true},
		{`CORP\jdoe`, "jdoe@corp.example.com", true},
		{`corp\JDoe`, `CORP\jdoe`, true},
		{"JDOE@Corp.Example.com", "jdoe@corp.example.com", true},
		{"jdoe", "jdoe", true},
		{"jdoe@corp.example.com", "jdoe", true},
		{"jdoe@corp.example.com", "jdoe@other.example", false},
		{`CORP\jdoe`, `OTHER\jdoe`, false},
		{`CORP\jdoe`, `CORP\jdoe2`, false},
		{"jdoe", "jdoe2", false},
		{"", "", false},
		{"", "jdoe", false},
		{`CORP\`, `CORP\`, false},
		{"jürgen", "JÜRGEN", true}, // Unicode simple case folding, as the canonical names fold
		{"jürgen", "jürgen", true},
	}
	for _, tt := range tests {
		if got := SameUser([]byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("SameUser(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := SameUser([]byte(tt.b), []byte(tt.a)); got != tt.want {
			t.Errorf("SameUser(%q, %q) = %v, want %v (symmetry)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestEncodersRefuse(t *testing.T) {
	r := reqSample(CmdSync, V141)
	r.Command = CmdFind
	if got := AppendBase64Query([]byte("x"), r); string(got) != "x" {
		t.Errorf("Find encoded as base64: %s", got)
	}
	r = reqSample(CmdSync, V141)
	r.ItemID = []byte(strings.Repeat("i", 256))
	if got := AppendBase64Query(nil, r); got != nil {
		t.Errorf("256-byte value encoded: %s", got)
	}
	o := &Request{Command: CmdOptions, User: []byte("a b")}
	if got := string(AppendPlainQuery(nil, o)); got != "User=a%20b" {
		t.Errorf("OPTIONS plain = %q", got)
	}
}

// TestHeaderMap checks the map adapter's case-insensitive lookup.
func TestHeaderMap(t *testing.T) {
	h := HeaderMap{"ms-asprotocolversion": "14.1", "X-MS-PolicyKey": "5"}
	if string(h.Peek("MS-ASProtocolVersion")) != "14.1" || string(h.Peek("X-MS-PolicyKey")) != "5" || h.Peek("User-Agent") != nil {
		t.Error("HeaderMap lookup")
	}
	r := mustParse(t, "POST", reqPath, "Cmd=Sync&DeviceId=D1&DeviceType=T", h)
	if r.Version != V141 || r.PolicyKey != 5 {
		t.Errorf("%+v", viewOf(r))
	}
}

// reqTestdataCases reads testdata/requests/*.txt: "METHOD path?query" lines,
// then optional "Header: value" lines, cases separated by blank lines;
// '#' starts a comment line.
type reqCase struct {
	name, method, path, query string
	headers                   HeaderMap
}

func reqTestdataCases(t testing.TB) []reqCase {
	files, err := filepath.Glob(filepath.Join("testdata", "requests", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/requests/*.txt: %v", err)
	}
	var out []reqCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cur *reqCase
		for ln, line := range strings.Split(string(data), "\n") {
			line = strings.TrimRight(line, "\r")
			switch {
			case strings.HasPrefix(line, "#"):
			case line == "":
				cur = nil
			case cur == nil:
				method, target, ok := strings.Cut(line, " ")
				if !ok {
					t.Fatalf("%s:%d: want METHOD target", f, ln+1)
				}
				path, query, _ := strings.Cut(target, "?")
				out = append(out, reqCase{name: fmt.Sprintf("%s:%d", filepath.Base(f), ln+1),
					method: method, path: path, query: query, headers: HeaderMap{}})
				cur = &out[len(out)-1]
			default:
				k, v, ok := strings.Cut(line, ":")
				if !ok {
					t.Fatalf("%s:%d: want Header: value", f, ln+1)
				}
				cur.headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// TestGolden parses every request in testdata/requests and compares the
// JSON rendering (or the error) with testdata/requests/parsed.golden.
func TestGolden(t *testing.T) {
	var b strings.Builder
	for _, c := range reqTestdataCases(t) {
		var r Request
		err := r.Parse([]byte(c.method), []byte(c.path), []byte(c.query), c.headers)
		fmt.Fprintf(&b, "%s %s %s?%s\n", c.name, c.method, c.path, c.query)
		if err != nil {
			fmt.Fprintf(&b, "  error: %v\n", err)
		}
		js, jerr := json.Marshal(&r)
		if jerr != nil {
			t.Fatal(jerr)
		}
		fmt.Fprintf(&b, "  %s\n", js)
	}
	golden := filepath.Join("testdata", "requests", "parsed.golden")
	if *reqUpdate {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-requests to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("golden mismatch; got:\n%s", b.String())
	}
}

func TestParseAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	plainQ := []byte("Cmd=Sync&User=CORP%5Cjdoe&DeviceId=ApplDMPL69PZF18P&DeviceType=iPad")
	b64Q := []byte("jRIJBBBBcHBsRE1QTDY5UFpGMThQBGBI6k0EaVBhZAgEamRvZQ==")
	var h Headers = reqHeaders("MS-ASProtocolVersion", "14.1", "X-MS-PolicyKey", "1307199584",
		"User-Agent", "iOS/18.0 (22A3354) dataaccessd/1.0", "Content-Type", "application/vnd.ms-sync.wbxml",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(`CORP\jdoe:secret`)))
	method, path := []byte("POST"), []byte(reqPath)
	bad := []byte("Cmd=Sync&DeviceId=a,b&DeviceType=T")
	r := new(Request)
	for _, tc := range []struct {
		name    string
		q       []byte
		wantErr bool
	}{{"plain", plainQ, false}, {"base64", b64Q, false}, {"error", bad, true}} {
		allocs := testing.AllocsPerRun(200, func() {
			err := r.Parse(method, path, tc.q, h)
			if (err != nil) != tc.wantErr {
				panic(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocs per Parse, want 0", tc.name, allocs)
		}
	}
	if string(r.DeviceID) != "a,b" && r.DeviceID != nil {
		t.Errorf("unexpected state")
	}
	a := testing.AllocsPerRun(200, func() {
		if !SameUser([]byte(`CORP\jdoe`), []byte("jdoe@corp.example.com")) {
			panic("SameUser")
		}
	})
	if a != 0 {
		t.Errorf("SameUser: %v allocs", a)
	}
}

func ExampleRequest_Parse() {
	var r Request // reuse one per connection: Parse allocates nothing
	h := HeaderMap{
		"MS-ASProtocolVersion": "14.1",
		"X-MS-PolicyKey":       "1307199584",
		"User-Agent":           "iOS/18.0 (22A3354) dataaccessd/1.0",
		"Authorization":        "Basic " + base64.StdEncoding.EncodeToString([]byte(`CORP\jdoe:secret`)),
	}
	err := r.Parse([]byte("POST"), []byte("/Microsoft-Server-ActiveSync"),
		[]byte("Cmd=Ping&User=jdoe%40corp.example.com&DeviceId=ApplDMPL69PZF18P&DeviceType=iPad"), h)
	fmt.Println(err)
	fmt.Println(r.Command, r.Version, r.PolicyKey, string(r.DeviceID), string(r.DeviceType))
	fmt.Println(string(r.AuthUser), string(r.AuthDomain), SameUser(r.User, r.AuthLogin))

	err = r.Parse([]byte("POST"), []byte("/Microsoft-Server-ActiveSync"),
		[]byte("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"), nil)
	fmt.Println(err, r.Base64, r.Command, r.Version, r.Locale, string(r.DeviceID))

	err = r.Parse([]byte("POST"), []byte("/Microsoft-Server-ActiveSync"), []byte("Cmd=Sync&DeviceType=iPad"), nil)
	fmt.Println(err)
	// Output:
	// <nil>
	// Ping 14.1 1307199584 ApplDMPL69PZF18P iPad
	// jdoe CORP true
	// <nil> true Sync 14.0 1033 v140Device
	// eas: DeviceId: missing (offset 24)
}
