package proxy

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/internal/testkit"
)

// BenchmarkProxySmallRequest sends a small FolderSync through easgate, in
// the same run straight to the fake CAS and through a bare fasthttp
// reverse proxy (no EAS work at all: the floor for a fasthttp gateway); it
// reports easgate's time as ratios of both.
func BenchmarkProxySmallRequest(b *testing.B) {
	cas := newFakeCAS(b)
	cas.record = false
	p := startProxy(b, mustParse(b, testYAML([]string{cas.url()}, map[string]string{"health_interval": "10s"})))
	bareAddr := startBareProxy(b, cas.addr)
	body := []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01}
	run := func(b *testing.B, addr string) time.Duration {
		hc := &fasthttp.HostClient{Addr: addr, MaxConns: 64}
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + addr + easURI("FolderSync", "jdoe", "ApplDMPL69PZF18P"))
		req.Header.SetMethod("POST")
		req.Header.Set("MS-ASProtocolVersion", "14.1")
		req.Header.Set("Authorization", testBasicAuth)
		req.Header.Set("User-Agent", "Apple-iPhone9C1/1402.100")
		req.SetBody(body)
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("%v %d", err, resp.StatusCode())
			}
		}
		return time.Since(start)
	}
	var direct, bare, proxied time.Duration
	b.Run("direct", func(b *testing.B) { b.ReportAllocs(); direct = run(b, cas.addr) / time.Duration(max(b.N, 1)) })
	b.Run("bare", func(b *testing.B) { b.ReportAllocs(); bare = run(b, bareAddr) / time.Duration(max(b.N, 1)) })
	b.Run("easgate", func(b *testing.B) {
		b.ReportAllocs()
		proxied = run(b, p.addr) / time.Duration(max(b.N, 1))
		if direct > 0 {
			b.ReportMetric(float64(proxied)/float64(direct), "x-direct")
		}
		if bare > 0 {
			b.ReportMetric(float64(proxied)/float64(bare), "x-bare")
		}
	})
}

// BenchmarkProxySmallRequestParallel is BenchmarkProxySmallRequest with
// 50 phones at once (each its own device id, as easbench's small scenario
// sends), through the bare proxy and through easgate in one run. It reports
// the process's CPU time per request (client, fake CAS and gateway in this
// one process: the difference between the legs is the gateway's) and
// easgate's as a ratio of the bare leg's: the in-process view of what
// concurrency adds (issue 14, item 4).
func BenchmarkProxySmallRequestParallel(b *testing.B) {
	cas := newFakeCAS(b)
	cas.record = false
	p := startProxy(b, mustParse(b, testYAML([]string{cas.url()}, map[string]string{"health_interval": "10s"})))
	logged := startProxy(b, mustParse(b, testYAML([]string{cas.url()}, map[string]string{"health_interval": "10s",
		"access_log": filepath.Join(b.TempDir(), "access.log")})))
	bareAddr := startBareProxy(b, cas.addr)
	body := []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01}
	const phones = 50
	run := func(b *testing.B, addr string) float64 {
		hc := &fasthttp.HostClient{Addr: addr, MaxConns: phones}
		var next atomic.Int64
		b.SetParallelism((phones + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		before := cpuTime()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			dev := fmt.Sprintf("ApplPAR%09d", next.Add(1))
			req.SetRequestURI("http://" + addr + easURI("FolderSync", "jdoe", dev))
			req.Header.SetMethod("POST")
			req.Header.Set("MS-ASProtocolVersion", "14.1")
			req.Header.Set("Authorization", testBasicAuth)
			req.Header.Set("User-Agent", "Apple-iPhone9C1/1402.100")
			req.SetBody(body)
			for pb.Next() {
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Errorf("%v %d", err, resp.StatusCode())
					return
				}
			}
		})
		b.StopTimer()
		us := float64(cpuTime()-before) / float64(time.Microsecond) / float64(max(b.N, 1))
		b.ReportMetric(us, "cpu-µs/op")
		return us
	}
	var bare float64
	b.Run("bare", func(b *testing.B) { bare = run(b, bareAddr) })
	b.Run("easgate", func(b *testing.B) {
		if us := run(b, p.addr); bare > 0 {
			b.ReportMetric(us/bare, "cpu-x-bare")
		}
	})
	// The same with the access log written to a file, as in production
	// and in easbench compare (the legs above have it off).
	b.Run("easgate-access-log", func(b *testing.B) {
		if us := run(b, logged.addr); bare > 0 {
			b.ReportMetric(us/bare, "cpu-x-bare")
		}
	})
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startBareProxy runs the smallest fasthttp reverse proxy in front of
// upstream: what a fasthttp gateway costs before any EAS work.
func startBareProxy(b *testing.B, upstream string) string {
	p := bench.NewBareProxy(upstream)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = p.Serve(ln) }()
	b.Cleanup(func() { _ = p.Close() })
	return ln.Addr().String()
}

// TestHeldPingMemory measures the resident memory each held Ping costs in
// the gateway (its side only: client and CAS live in this process too, so
// their share is measured separately and subtracted). Run with
// EASGATE_MEMTEST=9000 (number of Pings).
func TestHeldPingMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EASGATE_MEMTEST"))
	if n <= 0 {
		t.Skip("set EASGATE_MEMTEST=<pings> to measure memory per held Ping")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		// Both sets stay held together: the direct set needs 2 fds per Ping
		// (client, CAS), the proxied set 4 (client, easgate ×2, CAS).
		if need := uint64(6*n + 1000); lim.Cur < need {
			n = int(lim.Cur-1000) / 6
			t.Logf("open-file limit %d: measuring %d pings", lim.Cur, n)
		}
	}
	cas := newFakeCAS(t)
	cas.record = false
	cas.gate = make(chan struct{})
	extra := map[string]string{"health_interval": "10s", "max_header_bytes": os.Getenv("EASGATE_MEMTEST_HEADER")}
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, extra)))
	ping := testkit.PingBody(t, 480)

	hold := func(addr string, k int, counter func() int64) (rss int64, release func()) {
		var wg sync.WaitGroup
		conns := make([]net.Conn, 0, k)
		var mu sync.Mutex
		req := "POST " + easURI("Ping", "jdoe", "DEV") + " HTTP/1.1\r\nHost: x\r\nMS-ASProtocolVersion: 14.1\r\nX-Test-Gate: 1\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: " + strconv.Itoa(len(ping)) + "\r\n\r\n" + string(ping)
		for i := 0; i < k; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = c.Write([]byte(req))
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}()
		}
		wg.Wait()
		waitFor(t, "requests held", func() bool { return counter() >= int64(k) })
		// Return freed pages to the OS so that RSS counts what is live.
		runtime.GC()
		time.Sleep(500 * time.Millisecond)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("%s: heap in use %d MiB, stacks %d MiB, goroutines %d", addr, ms.HeapInuse>>20, ms.StackInuse>>20, runtime.NumGoroutine())
		return vmRSS(t), func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	base := vmRSS(t)
	// Direct to the CAS: client + CAS cost.
	startGated := cas.gated.Load()
	rssDirect, rel1 := hold(cas.addr, n, func() int64 { return cas.gated.Load() - startGated })
	directPer := float64(rssDirect-base) / float64(n)
	startGated = cas.gated.Load()
	// Through easgate: client + easgate + CAS.
	rssProxy, rel2 := hold(p.addr, n, func() int64 { return min(cas.gated.Load()-startGated, p.s.HeldLongPolls()) })
	// The second set costs client + easgate + CAS per Ping; subtract the
	// client + CAS share measured by the first set.
	proxyPer := float64(rssProxy-rssDirect)/float64(n) - directPer
	if path := os.Getenv("EASGATE_MEMTEST_PROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	cas.openGate()
	rel1()
	rel2()
	t.Logf("%d held Pings: client+CAS %.1f KiB each; easgate %.1f KiB per held Ping (target < 12 KiB, nginx 9.7 KiB)",
		n, directPer/1024, proxyPer/1024)
	if proxyPer > 12*1024 {
		t.Errorf("easgate costs %.1f KiB per held Ping, want < 12 KiB", proxyPer/1024)
	}
}

// BenchmarkConcurrentDownloads streams 20 concurrent 50 MB attachment
// downloads through the gateway (issue target: easgate's RSS grows by less
// than 64 MB) and reports the RSS growth. The phones, the gateway and the
// fake CAS share this process, so the figure is an upper bound for easgate.
func BenchmarkConcurrentDownloads(b *testing.B) {
	const n, size = 20, 50 << 20
	cas := newFakeCAS(b)
	cas.record = false
	p := startProxy(b, mustParse(b, testYAML([]string{cas.url()}, nil)))
	runtime.GC()
	before := vmRSS(b)
	var peak atomic.Int64
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				req := fasthttp.AcquireRequest()
				defer fasthttp.ReleaseRequest(req)
				req.SetRequestURI("http://" + p.addr + easURI("ItemOperations", "jdoe", "dl"+strconv.Itoa(i)))
				req.Header.SetMethod("POST")
				req.Header.Set("Authorization", testBasicAuth)
				req.Header.Set("MS-ASProtocolVersion", "14.1")
				req.Header.Set("X-Test-Download", strconv.Itoa(size))
				resp := fasthttp.AcquireResponse()
				defer fasthttp.ReleaseResponse(resp)
				resp.StreamBody = true
				if err := p.hc.Do(req, resp); err != nil {
					errs <- err
					return
				}
				buf := make([]byte, 32<<10)
				var got int64
				for {
					k, err := resp.BodyStream().Read(buf)
					got += int64(k)
					if got%(8<<20) < int64(k) {
						if r := vmRSS(b); r > peak.Load() {
							peak.Store(r)
						}
					}
					if err != nil {
						break
					}
				}
				_ = resp.CloseBodyStream()
				if got != size {
					errs <- fmt.Errorf("download %d: %d bytes, want %d", i, got, size)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	growth := peak.Load() - before
	b.ReportMetric(float64(growth)/(1<<20), "MiB-RSS-growth")
	if !raceEnabled && growth > 64<<20 {
		b.Fatalf("RSS grew by %d MiB during 20 concurrent 50 MB downloads, want < 64 MiB", growth>>20)
	}
}
