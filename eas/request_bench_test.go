package eas

import (
	"encoding/base64"
	"testing"
)

func reqBenchHeaders() Headers {
	return reqHeaders(
		"Host", "mail.corp.example.com",
		"MS-ASProtocolVersion", "14.1",
		"X-MS-PolicyKey", "1307199584",
		"User-Agent", "iOS/18.0 (22A3354) dataaccessd/1.0",
		"Content-Type", "application/vnd.ms-sync.wbxml",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(`CORP\jdoe:correct horse battery staple`)),
	)
}

func reqBench(b *testing.B, q []byte) {
	h := reqBenchHeaders()
	method, path := []byte("POST"), []byte(reqPath)
	r := new(Request)
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Parse(method, path, q, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePlain: a typical Sync request, plain form with headers and
// Basic auth.
func BenchmarkParsePlain(b *testing.B) {
	reqBench(b, []byte("Cmd=Sync&User=CORP%5Cjdoe&DeviceId=ApplDMPL69PZF18P&DeviceType=iPad"))
}

// BenchmarkParseBase64: the same device's Ping in the base64 form.
func BenchmarkParseBase64(b *testing.B) {
	reqBench(b, []byte("jRIJBBBBcHBsRE1QTDY5UFpGMThQBGBI6k0EaVBhZAgEamRvZQ=="))
}

func BenchmarkAppendBase64Query(b *testing.B) {
	r := reqSample(CmdSmartReply, V141)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendBase64Query(buf[:0], r)
	}
}

func BenchmarkSameUser(b *testing.B) {
	x, y := []byte(`CORP\jdoe`), []byte("JDoe@corp.example.com")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !SameUser(x, y) {
			b.Fatal("mismatch")
		}
	}
}
