package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/internal/testkit"
)

// TestTLSHeldPingWaitsWithoutBuffer: a Ping held at an https CAS (TLS 1.3)
// waits for the answer's first byte without a read buffer, like one at an
// http CAS. The first-byte wait polls the TCP socket, so a TLS record that
// is not the answer would end it early and leave the wait holding fasthttp's
// 4 KiB reader for the whole heartbeat: a TLS 1.3 server's session tickets,
// sent after the client's Finished. A server sends them only to a client
// that offers resumption (psk_key_exchange_modes), which easgate's upstream
// TLS config does not (no ClientSessionCache). The CAS here requests a
// client certificate, which makes Go's server send its tickets late, as
// Schannel does: with a session cache in the upstream config this test
// fails.
func TestTLSHeldPingWaitsWithoutBuffer(t *testing.T) {
	dir := t.TempDir()
	casCertPath, _, casCert := testkit.SelfSignedCert(t, dir, "cas.corp.example.com")
	cas := &fakeCAS{t: t}
	cas.health.Store(200)
	cas.gate = make(chan struct{})
	cas.srv = &fasthttp.Server{Handler: cas.handle, NoDefaultServerHeader: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cas.addr = ln.Addr().String()
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{casCert}, MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert})
	go func() { _ = cas.srv.Serve(tln) }()
	t.Cleanup(func() { cas.openGate(); _ = cas.srv.Shutdown() })

	y := testYAML([]string{"https://" + cas.addr}, map[string]string{"health_interval": "1h"})
	y = strings.Replace(y, "  health_check:", "  tls:\n    trusted_cas: "+casCertPath+"\n    server_name: cas.corp.example.com\n  health_check:", 1)
	p := startProxy(t, mustParse(t, y))

	done := make(chan error, 1)
	go func() {
		resp, err := p.do(t, "Ping", "tlsping", testkit.PingBody(t, 480), map[string]string{"X-Test-Gate": "1"})
		if err == nil {
			fasthttp.ReleaseResponse(resp)
		}
		done <- err
	}()
	waitFor(t, "the Ping held at the CAS", func() bool { return cas.gated.Load() == 1 })
	time.Sleep(300 * time.Millisecond)
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var waiting, reading bool
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte("upstream.heldRoundTrip")) {
			continue
		}
		t.Logf("%s", g)
		waiting = waiting || bytes.Contains(g, []byte("(*liveConn).SetReadDeadline"))
		reading = reading || bytes.Contains(g, []byte("proxy.heldRead"))
	}
	if reading || !waiting {
		t.Errorf("held at an https CAS: waiting for the first byte %v, reading with a buffer %v", waiting, reading)
	}
	cas.openGate()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
