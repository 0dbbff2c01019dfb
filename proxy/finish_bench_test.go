package proxy

import (
	"io"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/proxy/config"
)

// finishBench is a server and a finished-looking exchange (a FolderSync
// inspected, decided, forwarded and answered 200) for the benchmarks of
// what finish costs: the metrics and the access-log line.
func finishBench(b testing.TB, format string) (*Server, *exchange) {
	b.Helper()
	cas := newFakeCAS(b)
	s, err := newServer(mustParse(b, testYAML([]string{cas.url()}, nil)), testLogger(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	st := s.cur.Load()
	b.Cleanup(st.close)
	if format != "" {
		c := config.Log{AccessLog: filepath.Join(b.TempDir(), "access.log"), Format: format}
		if format == "discard" { // the line alone, without the file system
			c = config.Log{AccessLog: "stdout", Format: "json"}
		}
		al, err := openAccessLog(c, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		st.access = al
		b.Cleanup(al.close)
	}
	ctx := newTestCtx("FolderSync", nil)
	x := &exchange{s: s, st: st, remote: ctx.RemoteAddr()}
	if done, _ := s.inspect(ctx, x, new(eas.Request)); done {
		b.Fatal("inspect answered")
	}
	x.route = routeEAS
	x.backend = st.pool.Backends[0]
	x.status, x.bytesIn, x.bytesOut = 200, 13, 230
	x.upDur = 2345 * time.Microsecond
	x.sc = nil
	return s, x
}

// threadCPU is the calling thread's CPU time so far: on a shared machine
// the benchmarks below report it per operation (cpu-ns/op), which other
// processes do not inflate as they do the wall time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopCPU runs f b.N times on one locked thread and reports its CPU time
// per call.
func loopCPU(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start := threadCPU()
	for range b.N {
		f()
	}
	b.StopTimer()
	b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkFinish is finish for one exchange: metrics only (access log
// off), and metrics and the access-log line to a file in the JSON and
// console formats, and in JSON to io.Discard.
func BenchmarkFinish(b *testing.B) {
	for _, format := range []string{"", "json", "console", "discard"} {
		name := format
		if name == "" {
			name = "off"
		}
		b.Run(name, func(b *testing.B) {
			s, tmpl := finishBench(b, format)
			st := tmpl.st
			loopCPU(b, func() {
				x := exchangePool.Get().(*exchange)
				*x = *tmpl
				x.start = time.Now().Add(-5 * time.Millisecond)
				st.refs.Add(1)
				x.finish()
			})
			_ = s
		})
	}
}

// BenchmarkAccessLogLine is writeAccess alone, one goroutine and all
// cores at once (the lines share one buffer).
func BenchmarkAccessLogLine(b *testing.B) {
	for _, format := range []string{"json", "console", "discard"} {
		b.Run(format, func(b *testing.B) {
			_, x := finishBench(b, format)
			cmd, decision := commandIndex(x), x.decisionLabel()
			loopCPU(b, func() { x.st.writeAccess(x, cmd, decision, time.Now(), 5*time.Millisecond) })
		})
	}
	// From all cores, and from 50 goroutines as 50 phones' requests: the
	// wall time shows how long the appends wait for each other and for
	// the file; cpu-ns/op is the process's.
	b.Run("json-parallel", func(b *testing.B) { accessLinesParallel(b, 1) })
	b.Run("json-50", func(b *testing.B) { accessLinesParallel(b, (50+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)) })
}

func accessLinesParallel(b *testing.B, parallelism int) {
	_, x := finishBench(b, "json")
	cmd, decision := commandIndex(x), x.decisionLabel()
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	before := cpuTime() // the process's (bench_test.go)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			x.st.writeAccess(x, cmd, decision, time.Now(), 5*time.Millisecond)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// BenchmarkRequestMetrics is the per-request metrics of a forwarded
// request: the upstream duration (respond), the count and the duration
// (finish).
func BenchmarkRequestMetrics(b *testing.B) {
	s, x := finishBench(b, "")
	m := s.metrics
	loopCPU(b, func() {
		m.upstreamDuration(x.cmd, x.upDur.Seconds())
		cmd, decision := commandIndex(x), x.decisionLabel()
		m.request(cmd, decision, x.status)
		m.requestDuration(cmd, 0.005)
	})
}
