package bench

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// rawRequest is one hand-made request to the fake CAS.
type rawRequest struct {
	method  string
	uri     string // path and query
	headers map[string]string
	body    []byte
}

type rawResponse struct {
	status int
	header *fasthttp.ResponseHeader
	body   []byte
}

func doRaw(t *testing.T, base string, rq rawRequest) rawResponse {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(base + rq.uri)
	req.URI().DisablePathNormalizing = true
	req.Header.SetMethod(rq.method)
	for k, v := range rq.headers {
		req.Header.Set(k, v)
	}
	if rq.body != nil {
		req.Header.SetContentType(ctWBXML)
		req.SetBody(rq.body)
	}
	if err := (&fasthttp.Client{}).DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.uri, err)
	}
	out := rawResponse{header: new(fasthttp.ResponseHeader)}
	out.status = resp.StatusCode()
	resp.Header.CopyTo(out.header)
	out.body = append([]byte(nil), resp.Body()...)
	return out
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func plainURI(cmd, user string) string {
	return "/Microsoft-Server-ActiveSync?Cmd=" + cmd + "&User=" + user + "&DeviceId=TESTDEV1&DeviceType=SmartPhone"
}

func doc(build func(e *wbxml.Encoder)) []byte {
	e := wbxml.NewEncoder(nil)
	e.Header()
	build(e)
	return e.Bytes()
}

func folderSyncBody(key string) []byte {
	return doc(func(e *wbxml.Encoder) {
		e.Start(wbxml.FolderHierarchyFolderSync)
		e.Element(wbxml.FolderHierarchySyncKey, key)
		e.End()
	})
}

func TestFakeCASOptionsAndHealth(t *testing.T) {
	url := startCAS(t, NewFakeCAS(FakeCASConfig{}))
	r := doRaw(t, url, rawRequest{method: "OPTIONS", uri: "/Microsoft-Server-ActiveSync"})
	if r.status != 200 {
		t.Fatalf("OPTIONS status %d", r.status)
	}
	for h, want := range map[string]string{
		"MS-ASProtocolVersions": "14.1", "MS-ASProtocolCommands": "Provision", "MS-Server-ActiveSync": "15.1",
		"Allow": "OPTIONS,POST",
	} {
		if got := string(r.header.Peek(h)); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", h, got, want)
		}
	}
	r = doRaw(t, url, rawRequest{method: "GET", uri: "/Microsoft-Server-ActiveSync/healthcheck.htm"})
	if r.status != 200 || !bytes.Contains(r.body, []byte("200 OK")) {
		t.Errorf("healthcheck = %d %q", r.status, r.body)
	}
	r = doRaw(t, url, rawRequest{method: "GET", uri: "/owa/"})
	if r.status != 404 {
		t.Errorf("GET /owa/ = %d, want 404", r.status)
	}
}

func TestFakeCASBasicAuth(t *testing.T) {
	url := startCAS(t, NewFakeCAS(FakeCASConfig{Users: map[string]string{"jdoe@corp.example.com": "s3cret"}}))
	cases := []struct {
		name, auth string
		want       int
	}{
		{"missing", "", 401},
		{"wrong password", basic("jdoe", "nope"), 401},
		{"unknown user", basic("mallory", "s3cret"), 401},
		{"bearer", "Bearer abc", 401},
		{"user part", basic("jdoe", "s3cret"), 200},
		{"UPN", basic("jdoe@corp.example.com", "s3cret"), 200},
		{"DOMAIN\\user", basic(`CORP\jdoe`, "s3cret"), 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.auth != "" {
				h["Authorization"] = tc.auth
			}
			r := doRaw(t, url, rawRequest{method: "OPTIONS", uri: "/Microsoft-Server-ActiveSync", headers: h})
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			if tc.want == 401 && !strings.HasPrefix(string(r.header.Peek("WWW-Authenticate")), "Basic realm=") {
				t.Errorf("WWW-Authenticate = %q", r.header.Peek("WWW-Authenticate"))
			}
		})
	}
	// The query's User must be the authenticated one.
	r := doRaw(t, url, rawRequest{method: "POST", uri: plainURI("FolderSync", "other"),
		headers: map[string]string{"Authorization": basic("jdoe", "s3cret"), "MS-ASProtocolVersion": "14.0"},
		body:    folderSyncBody("0")})
	if r.status != 401 {
		t.Errorf("User=other with jdoe's credentials: %d, want 401", r.status)
	}
}

// TestFakeCASProvisionNudge: without the device's policy key, commands are
// sent to Provision: HTTP 449 for 12.1, Status 142 (no key) or 144 (wrong
// key) in the command's namespace from 14.0.
func TestFakeCASProvisionNudge(t *testing.T) {
	url := startCAS(t, NewFakeCAS(FakeCASConfig{}))
	cases := []struct {
		version, key string
		wantHTTP     int
		wantStatus   string
	}{
		{"12.1", "", 449, ""},
		{"12.1", "12345", 449, ""},
		{"14.0", "", 200, "142"},
		{"14.0", "0", 200, "142"},
		{"14.1", "12345", 200, "144"},
		{"16.1", "", 200, "142"},
	}
	for _, tc := range cases {
		t.Run(tc.version+"/"+tc.key, func(t *testing.T) {
			h := map[string]string{"MS-ASProtocolVersion": tc.version}
			if tc.key != "" {
				h["X-MS-PolicyKey"] = tc.key
			}
			r := doRaw(t, url, rawRequest{method: "POST", uri: plainURI("FolderSync", "jdoe"), headers: h, body: folderSyncBody("0")})
			if r.status != tc.wantHTTP {
				t.Fatalf("HTTP %d, want %d", r.status, tc.wantHTTP)
			}
			if tc.wantStatus == "" {
				return
			}
			want := doc(func(e *wbxml.Encoder) {
				e.Start(wbxml.FolderHierarchyFolderSync)
				e.Element(wbxml.FolderHierarchyStatus, tc.wantStatus)
				e.End()
			})
			if !bytes.Equal(r.body, want) {
				t.Errorf("body % X, want % X", r.body, want)
			}
		})
	}
	// PROTOCOL.md §6.1 H: the "must provision" FolderSync answer, byte for byte.
	r := doRaw(t, url, rawRequest{method: "POST", uri: plainURI("FolderSync", "jdoe"),
		headers: map[string]string{"MS-ASProtocolVersion": "14.0"}, body: folderSyncBody("0")})
	want := []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x4C, 0x03, 0x31, 0x34, 0x32, 0x00, 0x01, 0x01}
	if !bytes.Equal(r.body, want) {
		t.Errorf("142 body % X, want % X", r.body, want)
	}
}

func TestFakeCASProvisionPhases(t *testing.T) {
	f := NewFakeCAS(FakeCASConfig{})
	url := startCAS(t, f)
	provision := func(version string, body []byte) *node {
		t.Helper()
		r := doRaw(t, url, rawRequest{method: "POST", uri: plainURI("Provision", "jdoe"),
			headers: map[string]string{"MS-ASProtocolVersion": version}, body: body})
		if r.status != 200 {
			t.Fatalf("Provision HTTP %d", r.status)
		}
		n, err := decodeTree(r.body)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	initial := func(withInfo bool) []byte {
		return doc(func(e *wbxml.Encoder) {
			e.Start(wbxml.ProvisionProvision)
			if withInfo {
				e.Start(wbxml.SettingsDeviceInformation)
				e.Start(wbxml.SettingsSet)
				e.Element(wbxml.SettingsModel, "iPad3C6")
				e.End()
				e.End()
			}
			e.Start(wbxml.ProvisionPolicies)
			e.Start(wbxml.ProvisionPolicy)
			e.Element(wbxml.ProvisionPolicyType, policyTypeWBXML)
			e.End()
			e.End()
			e.End()
		})
	}
	ack := func(key string) []byte {
		return doc(func(e *wbxml.Encoder) {
			e.Start(wbxml.ProvisionProvision)
			e.Start(wbxml.ProvisionPolicies)
			e.Start(wbxml.ProvisionPolicy)
			e.Element(wbxml.ProvisionPolicyType, policyTypeWBXML)
			e.Element(wbxml.ProvisionPolicyKey, key)
			e.Element(wbxml.ProvisionStatus, "1")
			e.End()
			e.End()
			e.End()
		})
	}
	// 14.1 without DeviceInformation: Status 165.
	if st := provision("14.1", initial(false)).str(wbxml.ProvisionStatus); st != "165" {
		t.Errorf("14.1 Provision without DeviceInformation: Status %s, want 165", st)
	}
	n := provision("14.1", initial(true))
	pol := n.path(wbxml.ProvisionPolicies, wbxml.ProvisionPolicy)
	temp := pol.str(wbxml.ProvisionPolicyKey)
	if n.str(wbxml.ProvisionStatus) != "1" || pol.str(wbxml.ProvisionStatus) != "1" || temp == "" ||
		pol.path(wbxml.ProvisionData, wbxml.ProvisionEASProvisionDoc) == nil {
		t.Fatalf("initial answer lacks status, key or policy document")
	}
	if n.child(wbxml.SettingsDeviceInformation).str(wbxml.SettingsStatus) != "1" {
		t.Errorf("no DeviceInformation Status 1 in the 14.1 answer")
	}
	if info, ok := f.DeviceInfo("jdoe", "TESTDEV1"); !ok || info.Model != "iPad3C6" {
		t.Errorf("DeviceInformation from the 14.1 Provision not stored: %+v", info)
	}
	// Acknowledging a wrong key: Policy Status 5, no key.
	wrong := "1"
	if temp == "1" {
		wrong = "2"
	}
	pol = provision("14.1", ack(wrong)).path(wbxml.ProvisionPolicies, wbxml.ProvisionPolicy)
	if pol.str(wbxml.ProvisionStatus) != "5" || pol.has(wbxml.ProvisionPolicyKey) {
		t.Errorf("wrong-key ack: Policy Status %s", pol.str(wbxml.ProvisionStatus))
	}
	pol = provision("14.1", ack(temp)).path(wbxml.ProvisionPolicies, wbxml.ProvisionPolicy)
	final := pol.str(wbxml.ProvisionPolicyKey)
	if pol.str(wbxml.ProvisionStatus) != "1" || final == "" || final == temp {
		t.Fatalf("ack answer: status %s, final key %q (temporary %q)", pol.str(wbxml.ProvisionStatus), final, temp)
	}
	// The final key opens the other commands.
	r := doRaw(t, url, rawRequest{method: "POST", uri: plainURI("FolderSync", "jdoe"),
		headers: map[string]string{"MS-ASProtocolVersion": "14.1", "X-MS-PolicyKey": final}, body: folderSyncBody("0")})
	fs, err := decodeTree(r.body)
	if err != nil || fs.str(wbxml.FolderHierarchyStatus) != "1" {
		t.Fatalf("FolderSync with the final key: %d % X", r.status, r.body)
	}
	if got := len(fs.path(wbxml.FolderHierarchyChanges).children(wbxml.FolderHierarchyAdd)); got != 7 {
		t.Errorf("%d folders, want 7", got)
	}
	if f.Stats().Provisioned != 1 {
		t.Errorf("Provisioned = %d", f.Stats().Provisioned)
	}
}

// TestFakeCASMalformed: malformed requests get 400 (404 off the EAS path),
// never a panic.
func TestFakeCASMalformed(t *testing.T) {
	f := NewFakeCAS(FakeCASConfig{})
	url := startCAS(t, f)
	d := NewDevice(DeviceConfig{Target: url, User: "jdoe", Password: "x", DeviceID: "ApplMAL1", Profile: testProfile(eas.V141, false)})
	if err := d.Options(); err != nil {
		t.Fatal(err)
	}
	if err := d.Provision(); err != nil {
		t.Fatal(err)
	}
	key := strconv.FormatUint(uint64(d.PolicyKey()), 10)
	auth := map[string]string{"MS-ASProtocolVersion": "14.1", "X-MS-PolicyKey": key}
	uri := func(cmd string) string {
		return "/Microsoft-Server-ActiveSync?Cmd=" + cmd + "&User=jdoe&DeviceId=ApplMAL1&DeviceType=iPhone"
	}
	cases := []struct {
		name string
		rq   rawRequest
		want int
	}{
		{"no DeviceId", rawRequest{method: "POST", uri: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=jdoe&DeviceType=iPhone", headers: auth}, 400},
		{"no Cmd", rawRequest{method: "POST", uri: "/Microsoft-Server-ActiveSync?User=jdoe&DeviceId=A&DeviceType=iPhone", headers: auth}, 400},
		{"bad base64", rawRequest{method: "POST", uri: "/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25", headers: auth}, 400},
		{"truncated base64 fields", rawRequest{method: "POST", uri: "/Microsoft-Server-ActiveSync?jAAJBP8=", headers: auth}, 400},
		{"bad percent", rawRequest{method: "POST", uri: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=j%ZZ&DeviceId=A&DeviceType=B", headers: auth}, 400},
		{"bad version header", rawRequest{method: "POST", uri: uri("Sync"), headers: map[string]string{"MS-ASProtocolVersion": "99.9"}}, 400},
		{"bad policy key", rawRequest{method: "POST", uri: uri("Sync"), headers: map[string]string{"MS-ASProtocolVersion": "14.1", "X-MS-PolicyKey": "abc"}}, 400},
		{"no version", rawRequest{method: "POST", uri: uri("Sync")}, 400},
		{"not WBXML", rawRequest{method: "POST", uri: uri("FolderSync"), headers: auth, body: []byte("<FolderSync/>")}, 400},
		{"truncated WBXML", rawRequest{method: "POST", uri: uri("FolderSync"), headers: auth, body: folderSyncBody("0")[:9]}, 400},
		{"wrong root", rawRequest{method: "POST", uri: uri("FolderSync"), headers: auth, body: doc(func(e *wbxml.Encoder) {
			e.Start(wbxml.PingPing)
			e.End()
		})}, 400},
		{"switch to page 200", rawRequest{method: "POST", uri: uri("Ping"), headers: auth, body: []byte{3, 1, 0x6a, 0, 0, 200, 0x45, 1}}, 400},
		{"opaque claims 1 GB", rawRequest{method: "POST", uri: uri("Sync"), headers: auth, body: []byte{3, 1, 0x6a, 0, 0x45, 0xC3, 0x84, 0x80, 0x80, 0x80, 0x00, 1}}, 400},
		{"Provision not WBXML", rawRequest{method: "POST", uri: uri("Provision"), headers: auth, body: []byte{0xff, 0xfe}}, 400},
		{"SendMail bad rfc822", rawRequest{method: "POST", uri: uri("SendMail"),
			headers: map[string]string{"MS-ASProtocolVersion": "12.1", "X-MS-PolicyKey": key, "Content-Type": "message/rfc822"}}, 400},
		{"PUT", rawRequest{method: "PUT", uri: uri("Sync"), headers: auth}, 405},
		{"other path", rawRequest{method: "POST", uri: "/ews/exchange.asmx", headers: auth}, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := doRaw(t, url, tc.rq)
			if r.status != tc.want {
				t.Errorf("status %d, want %d (body %q)", r.status, tc.want, r.body)
			}
		})
	}
	if s := f.Stats(); s.Panics != 0 {
		t.Errorf("%d panics", s.Panics)
	}
}

// TestFakeCASSyncWindowAndResend: a mailbox larger than WindowSize comes
// in windows with MoreAvailable; replaying the previous SyncKey (a lost
// response) is accepted once.
func TestFakeCASSyncWindowAndResend(t *testing.T) {
	f := NewFakeCAS(FakeCASConfig{Messages: 60, MessageSize: 100})
	url := startCAS(t, f)
	d := NewDevice(DeviceConfig{Target: url, User: "win", Password: "x", DeviceID: "ApplWIN1", Profile: testProfile(eas.V161, true)})
	for _, step := range []func() error{d.Options, d.Provision, d.Settings, d.FolderSync} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	var got []int
	for i := 0; i < 10; i++ {
		n, more, err := d.Sync(d.InboxID)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
		if i > 0 && !more {
			break
		}
	}
	// Priming (0 items), then windows of 25 (the device's WindowSize).
	if fmt.Sprint(got) != "[0 25 25 10]" {
		t.Errorf("windows %v, want [0 25 25 10]", got)
	}
	// Replay the key of the last window: the same 10 items come again.
	prev := strconv.Itoa(mustAtoi(t, d.syncKeys[d.InboxID]) - 1)
	d.syncKeys[d.InboxID] = prev
	n, _, err := d.Sync(d.InboxID)
	if err != nil || n != 10 {
		t.Errorf("replayed key: %d items, %v; want 10", n, err)
	}
	// A key the server never issued: Status 3.
	d.syncKeys[d.InboxID] = "999"
	if _, _, err := d.Sync(d.InboxID); err == nil || !strings.Contains(err.Error(), "Status 3") {
		t.Errorf("unknown key: %v, want Status 3", err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFakeCASSyncWaitHeld: a Sync with Wait and nothing new is held, then
// answered with the new mail on Deliver; at expiry it gets the empty
// response.
func TestFakeCASSyncWaitHeld(t *testing.T) {
	f := NewFakeCAS(FakeCASConfig{Messages: 2, TimeScale: 600})
	url := startCAS(t, f)
	d := NewDevice(DeviceConfig{Target: url, User: "wait", Password: "x", DeviceID: "ApplWAIT", Profile: testProfile(eas.V141, false), TimeScale: 600})
	if err := d.Setup(); err != nil {
		t.Fatal(err)
	}
	key := d.syncKeys[d.InboxID]
	body := doc(func(e *wbxml.Encoder) {
		e.Start(wbxml.AirSyncSync)
		e.Start(wbxml.AirSyncCollections)
		e.Start(wbxml.AirSyncCollection)
		e.Element(wbxml.AirSyncSyncKey, key)
		e.Element(wbxml.AirSyncCollectionId, d.InboxID)
		e.End()
		e.End()
		e.Element(wbxml.AirSyncWait, "1") // 60 s / 600 = 100 ms
		e.End()
	})
	h := map[string]string{"MS-ASProtocolVersion": "14.1", "X-MS-PolicyKey": strconv.FormatUint(uint64(d.PolicyKey()), 10)}
	uri := "/Microsoft-Server-ActiveSync?Cmd=Sync&User=wait&DeviceId=ApplWAIT&DeviceType=iPhone"
	r := doRaw(t, url, rawRequest{method: "POST", uri: uri, headers: h, body: body})
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("expired Wait: %d %q, want an empty 200", r.status, r.body)
	}
	// Held again with a long Wait, woken by delivery.
	body = bytes.Replace(body, []byte{0x03, '1', 0x00}, []byte{0x03, '5', '9', 0x00}, 1)
	go func() {
		for f.Stats().HeldSyncs == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		f.Deliver("wait", 1)
	}()
	r = doRaw(t, url, rawRequest{method: "POST", uri: uri, headers: h, body: body})
	n, err := decodeTree(r.body)
	if err != nil {
		t.Fatalf("woken Sync: %d %v", r.status, err)
	}
	adds := n.path(wbxml.AirSyncCollections, wbxml.AirSyncCollection, wbxml.AirSyncCommands).children(wbxml.AirSyncAdd)
	if len(adds) != 1 {
		t.Errorf("woken Sync carries %d adds, want 1", len(adds))
	}
	// Wait out of range: Status 14 with Limit.
	bad := bytes.Replace(body, []byte{0x03, '5', '9', 0x00}, []byte{0x03, '9', '0', 0x00}, 1)
	r = doRaw(t, url, rawRequest{method: "POST", uri: uri, headers: h, body: bad})
	n, err = decodeTree(r.body)
	if err != nil || n.str(wbxml.AirSyncStatus) != "14" || n.str(wbxml.AirSyncLimit) != "59" {
		t.Errorf("Wait 90: % X", r.body)
	}
}

func TestFakeCASPingLimits(t *testing.T) {
	f := NewFakeCAS(FakeCASConfig{TimeScale: 1000})
	url := startCAS(t, f)
	d := NewDevice(DeviceConfig{Target: url, User: "p", Password: "x", DeviceID: "ApplPING", Profile: testProfile(eas.V161, true), TimeScale: 1000})
	if err := d.Setup(); err != nil {
		t.Fatal(err)
	}
	st, _, err := d.Ping(10)
	if err != nil || st != 5 || d.HeartbeatLimit != 60 {
		t.Errorf("Ping 10 s: status %d limit %d err %v; want 5 and 60", st, d.HeartbeatLimit, err)
	}
	st, _, err = d.Ping(4000)
	if err != nil || st != 5 || d.HeartbeatLimit != 3540 {
		t.Errorf("Ping 4000 s: status %d limit %d err %v; want 5 and 3540", st, d.HeartbeatLimit, err)
	}
	st, _, err = d.Ping(60)
	if err != nil || st != 1 {
		t.Errorf("Ping 60 s: %d %v", st, err)
	}
	if f.Stats().PingStatus[5] != 2 {
		t.Errorf("PingStatus %v", f.Stats().PingStatus)
	}
}

// TestFakeCASFailureInjection covers 503 + Retry-After, connection resets
// and slow answers.
func TestFakeCASFailureInjection(t *testing.T) {
	t.Run("503", func(t *testing.T) {
		f := NewFakeCAS(FakeCASConfig{FailRate: 1, RetryAfter: 7 * time.Second})
		url := startCAS(t, f)
		r := doRaw(t, url, rawRequest{method: "OPTIONS", uri: "/Microsoft-Server-ActiveSync"})
		if r.status != 503 || string(r.header.Peek("Retry-After")) != "7" {
			t.Errorf("status %d Retry-After %q", r.status, r.header.Peek("Retry-After"))
		}
		d := NewDevice(DeviceConfig{Target: url, User: "u", DeviceID: "D1", Profile: testProfile(eas.V141, false)})
		err := d.Options()
		var he *HTTPError
		if !errors.As(err, &he) || he.RetryAfter != 7*time.Second || ErrorKind(err) != "http_503" {
			t.Errorf("Options err = %v (%s)", err, ErrorKind(err))
		}
		if f.Stats().Injected503 != 2 {
			t.Errorf("Injected503 = %d", f.Stats().Injected503)
		}
	})
	t.Run("reset", func(t *testing.T) {
		f := NewFakeCAS(FakeCASConfig{ResetRate: 1})
		url := startCAS(t, f)
		d := NewDevice(DeviceConfig{Target: url, User: "u", DeviceID: "D1", Profile: testProfile(eas.V141, false)})
		err := d.Options()
		if err == nil || ErrorKind(err) != "reset" {
			t.Errorf("Options err = %v (kind %q), want a reset", err, ErrorKind(err))
		}
		if f.Stats().InjectedResets == 0 {
			t.Errorf("no reset counted")
		}
	})
	t.Run("slow", func(t *testing.T) {
		f := NewFakeCAS(FakeCASConfig{SlowRate: 1, SlowDelay: time.Millisecond})
		url := startCAS(t, f)
		if r := doRaw(t, url, rawRequest{method: "OPTIONS", uri: "/Microsoft-Server-ActiveSync"}); r.status != 200 {
			t.Errorf("slow OPTIONS: %d", r.status)
		}
		if f.Stats().InjectedSlow != 1 {
			t.Errorf("InjectedSlow = %d", f.Stats().InjectedSlow)
		}
	})
}

// TestFakeCASLargeAttachmentStreams downloads a 48 MiB attachment through
// GetAttachment (12.1) and multipart ItemOperations (16.1) and checks that
// neither side buffered it: the process allocates far less than the
// attachment size.
func TestFakeCASLargeAttachmentStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("large download")
	}
	const size = 48 << 20
	f := NewFakeCAS(FakeCASConfig{Messages: 3, AttachmentSize: size})
	url := startCAS(t, f)
	for _, v := range []eas.Version{eas.V121, eas.V161} {
		p := testProfile(v, false)
		p.MultiPart = true
		d := NewDevice(DeviceConfig{Target: url, User: "big" + v.String(), Password: "x", DeviceID: "ApplBIG", Profile: p, VerifyContent: true})
		if err := d.Setup(); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		n, err := d.FetchAttachment(d.Attachments[0])
		runtime.ReadMemStats(&after)
		if err != nil || n != size {
			t.Fatalf("%s: FetchAttachment = %d, %v", v, n, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
			t.Errorf("%s: %d MiB allocated for a %d MiB attachment: not streamed", v, alloc>>20, size>>20)
		}
	}
}

func TestFakeCASInlineAttachment(t *testing.T) {
	f := NewFakeCAS(FakeCASConfig{Messages: 3, AttachmentSize: 100001})
	url := startCAS(t, f)
	p := testProfile(eas.V141, false)
	p.MultiPart = false
	d := NewDevice(DeviceConfig{Target: url, User: "inl", Password: "x", DeviceID: "ApplINL", Profile: p, VerifyContent: true})
	if err := d.Setup(); err != nil {
		t.Fatal(err)
	}
	n, err := d.FetchAttachment(d.Attachments[0])
	if err != nil || n != 100001 {
		t.Fatalf("inline FetchAttachment = %d, %v", n, err)
	}
	if _, err := d.FetchAttachment("5:1:0"); err == nil || !strings.Contains(err.Error(), "Fetch Status 15") {
		t.Errorf("message without attachment: %v", err)
	}
	if f.Stats().AttachmentBytes != 100001 {
		t.Errorf("AttachmentBytes = %d", f.Stats().AttachmentBytes)
	}
}

func TestGenReaders(t *testing.T) {
	a, _ := io.ReadAll(newGenReader("x", 10000, false))
	b := genBytes("x", 10000, false)
	if !bytes.Equal(a, b) || len(a) != 10000 {
		t.Fatalf("generator not deterministic")
	}
	enc, _ := io.ReadAll(&base64Reader{src: bytes.NewReader(a)})
	if string(enc) != base64.StdEncoding.EncodeToString(a) {
		t.Errorf("streamed base64 differs")
	}
}

func TestCloseReleasesHeldPings(t *testing.T) {
	f := NewFakeCAS(FakeCASConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.Serve(ln) }()
	d := NewDevice(DeviceConfig{Target: "http://" + ln.Addr().String(), User: "c", DeviceID: "ApplCLOSE", Profile: testProfile(eas.V161, true)})
	if err := d.Setup(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		st, _, _ := d.Ping(3540)
		done <- st
	}()
	for f.Stats().HeldPings == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-done:
		if st != 1 {
			t.Errorf("held Ping answered %d on Close, want 1", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("held Ping not released by Close")
	}
}

func TestErrorKind(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{statusError("Sync", "Status", 129), "blocked"},
		{statusError("Sync", "Status", 4), "protocol"},
		{&ProtocolError{Command: "Ping", Msg: "bad WBXML"}, "protocol"},
		{&HTTPError{Command: "Sync", Status: 503}, "http_503"},
		{fmt.Errorf("wrapped: %w", &HTTPError{Status: 403}), "http_403"},
		{fasthttp.ErrTimeout, "timeout"},
		{io.ErrUnexpectedEOF, "reset"},
		{errors.New("something else"), "io"},
	}
	for _, tc := range cases {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestGenReaderSplitInvariant: the generated stream is the same however
// the reads are split (the client verifies attachments chunk by chunk).
func TestGenReaderSplitInvariant(t *testing.T) {
	whole := genBytes("att/x", 1000, false)
	g := newGenReader("att/x", 1000, false)
	var got []byte
	for _, n := range []int{1, 3, 7, 8, 9, 100, 500, 1000} {
		buf := make([]byte, n)
		k, _ := g.Read(buf)
		got = append(got, buf[:k]...)
	}
	if !bytes.Equal(got, whole) {
		t.Errorf("split reads differ from one read")
	}
}
