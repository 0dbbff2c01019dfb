package bench

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// FuzzFakeCAS feeds arbitrary requests to the fake CAS handler of a
// provisioned device (policy key 1) and checks that it never panics and
// never answers 5xx: malformed input is the client's fault (4xx or an EAS
// status).
func FuzzFakeCAS(f *testing.F) {
	seeds := []struct {
		cmd, version string
		base64       bool
		body         []byte
	}{
		{"FolderSync", "14.1", false, folderSyncBody("0")},
		{"Ping", "14.1", false, []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x48, 0x03, 0x36, 0x30, 0x00, 0x01, 0x49, 0x4A, 0x4B, 0x03, 0x35, 0x00, 0x01, 0x4C, 0x03, 0x45, 0x6D, 0x61, 0x69, 0x6C, 0x00, 0x01, 0x01, 0x01, 0x01}},
		{"Sync", "16.1", true, doc(func(e *wbxml.Encoder) {
			e.Start(wbxml.AirSyncSync)
			e.Start(wbxml.AirSyncCollections)
			e.Start(wbxml.AirSyncCollection)
			e.Element(wbxml.AirSyncSyncKey, "0")
			e.Element(wbxml.AirSyncCollectionId, "5")
			e.End()
			e.End()
			e.End()
		})},
		{"Sync", "12.1", false, nil},
		{"Settings", "14.0", false, doc(func(e *wbxml.Encoder) {
			e.Start(wbxml.SettingsSettings)
			e.Start(wbxml.SettingsDeviceInformation)
			e.Start(wbxml.SettingsSet)
			e.Element(wbxml.SettingsModel, "x")
			e.End()
			e.End()
			e.End()
		})},
		{"ItemOperations", "14.1", false, doc(func(e *wbxml.Encoder) {
			e.Start(wbxml.ItemOperationsItemOperations)
			e.Start(wbxml.ItemOperationsFetch)
			e.Element(wbxml.ItemOperationsStore, "Mailbox")
			e.Element(wbxml.AirSyncBaseFileReference, "5:3:0")
			e.End()
			e.End()
		})},
		{"SendMail", "14.0", false, doc(func(e *wbxml.Encoder) {
			e.Start(wbxml.ComposeMailSendMail)
			e.Element(wbxml.ComposeMailClientId, "1")
			e.Start(wbxml.ComposeMailMime)
			e.Opaque([]byte("To: a@b\r\n\r\nhi"))
			e.End()
			e.End()
		})},
		{"GetItemEstimate", "14.1", false, []byte{3, 1, 0x6a, 0, 0, 6, 0x45, 1}},
		{"Provision", "14.1", false, []byte{3, 1, 0x6a, 0, 0, 14, 0x45, 0x46, 0x47, 0x48, 3, 'x', 0, 1, 1, 1, 1}},
	}
	for _, s := range seeds {
		f.Add(s.cmd, s.version, s.base64, s.body)
	}
	cas := NewFakeCAS(FakeCASConfig{Messages: 5, AttachmentSize: 100, TimeScale: 1e6})
	dev := cas.device("fuzz", "FUZZDEV")
	dev.policyKey = 1
	h := cas.Handler()
	f.Fuzz(func(t *testing.T, cmd, version string, base64 bool, body []byte) {
		var req fasthttp.Request
		uri := "/Microsoft-Server-ActiveSync?Cmd=" + queryEscape(cmd) + "&User=fuzz&DeviceId=FUZZDEV&DeviceType=iPhone"
		if base64 {
			c, _ := eas.ParseCommand([]byte(cmd))
			v, _ := eas.ParseVersion([]byte(version))
			r := eas.Request{Command: c, Version: v, DeviceID: []byte("FUZZDEV"), DeviceType: []byte("iPhone"),
				User: []byte("fuzz"), HasPolicyKey: true, PolicyKey: 1}
			if q := eas.AppendBase64Query(nil, &r); len(q) > 0 {
				uri = "/Microsoft-Server-ActiveSync?" + string(q)
			}
		}
		req.SetRequestURI(uri)
		req.Header.SetMethod("POST")
		req.Header.Set("MS-ASProtocolVersion", version)
		req.Header.Set("X-MS-PolicyKey", "1")
		req.Header.SetContentType(ctWBXML)
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		h(&ctx)
		if st := ctx.Response.StatusCode(); st >= 500 && st != fasthttp.StatusNotImplemented {
			t.Fatalf("%s %s: HTTP %d", cmd, version, st)
		}
		if cas.Stats().Panics != 0 {
			t.Fatalf("handler panicked on %s %s % X", cmd, version, body)
		}
		if s := ctx.Response.BodyStream(); s != nil {
			ctx.Response.Reset()
		}
	})
}
