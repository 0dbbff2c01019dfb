package bench

import (
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas/wbxml"
)

// benchCall runs the fake CAS handler in-process (no sockets) for one
// request of a provisioned device.
func benchCall(b *testing.B, cas *FakeCAS, cmd string, body func(i int) []byte) {
	h := cas.Handler()
	var req fasthttp.Request
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Reset()
		req.SetRequestURI("/Microsoft-Server-ActiveSync?Cmd=" + cmd + "&User=bench&DeviceId=BENCHDEV&DeviceType=iPhone")
		req.Header.SetMethod("POST")
		req.Header.Set("MS-ASProtocolVersion", "16.1")
		req.Header.Set("X-MS-PolicyKey", "1")
		req.Header.SetContentType(ctWBXML)
		req.SetBody(body(i))
		ctx.Init(&req, nil, nil)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("HTTP %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

func BenchmarkFakeCASFolderSync(b *testing.B) {
	cas := NewFakeCAS(FakeCASConfig{})
	cas.device("bench", "BENCHDEV").policyKey = 1
	body := folderSyncBody("0")
	benchCall(b, cas, "FolderSync", func(int) []byte { return body })
}

// BenchmarkFakeCASSyncWindow measures a Sync answer carrying 25 generated
// 2 KiB messages (the SetBytes figure is the response size).
func BenchmarkFakeCASSyncWindow(b *testing.B) {
	cas := NewFakeCAS(FakeCASConfig{Messages: 1 << 30, MessageSize: 2048, AttachmentSize: -1})
	dev := cas.device("bench", "BENCHDEV")
	dev.policyKey = 1
	dev.folderKey = 1
	dev.cols[folderInbox] = &colState{key: 1}
	mk := func(key int) []byte {
		return doc(func(e *wbxml.Encoder) {
			e.Start(wbxml.AirSyncSync)
			e.Start(wbxml.AirSyncCollections)
			e.Start(wbxml.AirSyncCollection)
			e.Element(wbxml.AirSyncSyncKey, strconv.Itoa(key))
			e.Element(wbxml.AirSyncCollectionId, folderInbox)
			e.Element(wbxml.AirSyncWindowSize, "25")
			e.End()
			e.End()
			e.End()
		})
	}
	b.SetBytes(25 * 2300)
	benchCall(b, cas, "Sync", func(i int) []byte { return mk(i + 1) })
}

func BenchmarkGenReader(b *testing.B) {
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	g := newGenReader("att/bench", 1<<62, false)
	for i := 0; i < b.N; i++ {
		if _, err := io.ReadFull(g, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecorder(b *testing.B) {
	r := NewRecorder(time.Now(), time.Second)
	s := Sample{Command: "Sync", Start: time.Now(), Duration: 3 * time.Millisecond, Status: 200}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(s)
		}
	})
}
