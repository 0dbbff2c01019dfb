package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fixedReport builds a report from a fixed set of samples.
func fixedReport() *Report {
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f := &fleet{cfg: RunConfig{Target: "https://gw.example.test", Devices: 3, Duration: 10 * time.Second,
		Mix: map[string]int{"ios": 2, "outlook": 1}, TimeScale: 10, Heartbeat: 295 * time.Second}, start: start}
	f.rec = NewRecorder(start, time.Second)
	f.rec.now = func() time.Time { return start.Add(5 * time.Second) }
	f.setUp.Store(3)
	f.maxHeld.Store(3)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	for i := 0; i < 100; i++ {
		f.rec.Record(Sample{Command: "Sync", Start: at(float64(i) / 10), Duration: time.Duration(i+1) * time.Millisecond,
			Status: 200, BytesIn: 1000, BytesOut: 100})
	}
	for i := 0; i < 10; i++ {
		f.rec.Record(Sample{Command: "Ping", Start: at(float64(i)), Duration: 500 * time.Millisecond, Status: 200, LongPoll: true})
	}
	f.rec.Record(Sample{Command: "SendMail", Start: at(2), Duration: 5 * time.Millisecond, Status: 503, Kind: "http_503"})
	f.rec.Record(Sample{Command: "Ping", Start: at(9), Duration: time.Second, Canceled: true, LongPoll: true})
	f.rec.RecordError("Sync", "protocol", "Status 3 (invalid sync key) for a key the server issued")
	f.rec.noteError("protocol", "protocol: Sync: Status 3 (invalid sync key) for a key the server issued")
	for s := 0; s < 10; s++ {
		f.rec.setHeld(at(float64(s)+0.5), int64(s%4))
	}
	return f.report(10*time.Second, nil)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n%s", name, got)
	}
}

func TestReportJSONGolden(t *testing.T) {
	rep := fixedReport()
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden.json", b.Bytes())

	sync := rep.Commands["Sync"]
	if sync.Count != 100 || sync.Errors != 1 {
		t.Errorf("Sync count %d errors %d", sync.Count, sync.Errors)
	}
	// 1..100 ms uniformly: the quantiles are within the histogram's ~3 %.
	for _, q := range []struct{ got, want float64 }{{sync.P50, 50}, {sync.P90, 90}, {sync.P99, 99}, {sync.P999, 100}} {
		if math.Abs(q.got-q.want)/q.want > 0.04 {
			t.Errorf("quantile %.2f, want ≈%.0f", q.got, q.want)
		}
	}
	if rep.Commands["Ping"].Canceled != 1 || rep.Commands["Ping"].Count != 10 {
		t.Errorf("Ping: %+v", rep.Commands["Ping"])
	}
	if rep.ProtocolErrors() != 1 || rep.ErrorKinds["http_503"] != 1 || rep.Errors != 2 {
		t.Errorf("errors: %v", rep.ErrorKinds)
	}
	if rep.Overall.Count != 101 { // Syncs + SendMail, no held Pings
		t.Errorf("overall count %d", rep.Overall.Count)
	}
	if len(rep.Timeline) != 11 || rep.Timeline[3].HeldPings != 3 {
		t.Errorf("timeline: %+v", rep.Timeline)
	}
	var total int64
	for _, b := range rep.Histogram {
		total += b.Count
	}
	if total != rep.Overall.Count {
		t.Errorf("histogram holds %d samples, want %d", total, rep.Overall.Count)
	}
}

func TestReportHTML(t *testing.T) {
	rep := fixedReport()
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, want := range []string{`<svg id="latency-over-time"`, `<svg id="latency-histogram"`, `<svg id="throughput"`,
		`class="series"`, `<rect class="bar"`, "https://gw.example.test", "http_503"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Count(h, `<rect class="bar"`) != len(rep.Histogram) {
		t.Errorf("bars %d, bins %d", strings.Count(h, `<rect class="bar"`), len(rep.Histogram))
	}
	for _, bad := range []string{"<script", "src=\"http", "href=\"http"} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML must be self-contained, found %q", bad)
		}
	}
	golden(t, "report.golden.html", b.Bytes())
}

func TestReportText(t *testing.T) {
	var b bytes.Buffer
	if err := fixedReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden.txt", b.Bytes())
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	if h.quantile(0.5) != 0 {
		t.Errorf("empty quantile")
	}
	for _, d := range []time.Duration{time.Microsecond, time.Millisecond, time.Second, time.Hour} {
		var one hist
		one.add(d)
		got := one.quantile(0.5) * float64(time.Millisecond)
		if math.Abs(got-float64(d))/float64(d) > 0.04 {
			t.Errorf("single %v: quantile %v", d, time.Duration(got))
		}
	}
	for i := 0; i < 1<<20; i += 7 {
		if idx := histIndex(int64(i)); histLower(idx) > float64(i) || histUpper(idx) <= float64(i) {
			t.Fatalf("value %d in bucket %d [%v,%v)", i, idx, histLower(idx), histUpper(idx))
		}
	}
}

func TestParseMixAndAssign(t *testing.T) {
	mix, err := ParseMix("ios=40,outlook=30,gmail=10,samsung=10,windows=10")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, p := range assignProfiles(mix, 10) {
		counts[p.Name]++
	}
	if counts["ios"] != 4 || counts["outlook"] != 3 || counts["gmail"] != 1 || counts["samsung"] != 1 || counts["windows"] != 1 {
		t.Errorf("assignment %v", counts)
	}
	if got := len(assignProfiles(mix, 7)); got != 7 {
		t.Errorf("7 devices → %d profiles", got)
	}
	for _, bad := range []string{"", "ios", "nokia=3", "ios=-1", "ios=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
	seen := map[string]bool{}
	for name, p := range Profiles {
		for i := 0; i < 50; i++ {
			id := p.deviceID(i)
			if seen[id] || len(id) != max(p.DeviceIDLen, len(p.DeviceIDPrefix)+4) {
				t.Errorf("%s: device id %q duplicate or wrong length", name, id)
			}
			seen[id] = true
		}
	}
}

// withProcesses is fixedReport with the three sampled processes.
func withProcesses(inProcess bool) *Report {
	r := fixedReport()
	r.Gateway = &ProcReport{PID: 11, RSSStartKiB: 20 << 10, RSSMaxKiB: 48 << 10, RSSEndKiB: 40 << 10, CPUSeconds: 6.5, CPUPercent: 65}
	if !inProcess {
		r.CAS = &ProcReport{PID: 22, RSSStartKiB: 9 << 10, RSSMaxKiB: 31 << 10, RSSEndKiB: 30 << 10, CPUSeconds: 2.25, CPUPercent: 22.5}
	}
	r.Client = &ProcReport{PID: 33, RSSStartKiB: 12 << 10, RSSMaxKiB: 64 << 10, RSSEndKiB: 60 << 10, CPUSeconds: 4, CPUPercent: 40}
	r.CASInProcess = inProcess
	return r
}

// TestReportProcesses: the gateway, fake CAS and load generator figures
// appear in the JSON (documented names), the text and the HTML.
func TestReportProcesses(t *testing.T) {
	for _, inProcess := range []bool{false, true} {
		r := withProcesses(inProcess)
		var js bytes.Buffer
		if err := r.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(js.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		procs := []string{"gateway", "client"}
		if !inProcess {
			procs = append(procs, "cas")
		} else if _, ok := m["cas"]; ok {
			t.Errorf("in-process: JSON has a cas object")
		}
		for _, p := range procs {
			pm, ok := m[p].(map[string]any)
			if !ok {
				t.Fatalf("JSON lacks %q", p)
			}
			for _, k := range []string{"pid", "rss_start_kib", "rss_max_kib", "rss_end_kib", "cpu_seconds", "cpu_percent"} {
				if _, ok := pm[k]; !ok {
					t.Errorf("JSON %s lacks %q", p, k)
				}
			}
		}
		if got, _ := m["cas_in_process"].(bool); got != inProcess {
			t.Errorf("cas_in_process = %v, want %v", m["cas_in_process"], inProcess)
		}

		var txt bytes.Buffer
		if err := r.WriteText(&txt); err != nil {
			t.Fatal(err)
		}
		wantText := []string{"gateway pid 11: RSS start 20.0 MiB max 48.0 MiB end 40.0 MiB; CPU 6.50s (65% of one core)\n"}
		if inProcess {
			wantText = append(wantText, "load generator pid 33: RSS start 12.0 MiB max 64.0 MiB end 60.0 MiB; CPU 4.00s (40% of one core) (includes the in-process fake CAS)\n")
		} else {
			wantText = append(wantText, "fake CAS pid 22: RSS start 9.0 MiB max 31.0 MiB end 30.0 MiB; CPU 2.25s (22% of one core)\n",
				"load generator pid 33: RSS start 12.0 MiB max 64.0 MiB end 60.0 MiB; CPU 4.00s (40% of one core)\n")
		}
		for _, w := range wantText {
			if !strings.Contains(txt.String(), w) {
				t.Errorf("text lacks %q:\n%s", w, txt.String())
			}
		}

		var h bytes.Buffer
		if err := r.WriteHTML(&h); err != nil {
			t.Fatal(err)
		}
		rows := []string{"<tr><td>gateway</td><td>11</td><td>6.50</td><td>65%</td><td>20.0 MiB</td><td>48.0 MiB</td><td>40.0 MiB</td></tr>"}
		if inProcess {
			rows = append(rows, "<tr><td>load generator (includes the in-process fake CAS)</td><td>33</td>")
		} else {
			rows = append(rows, "<tr><td>fake CAS</td><td>22</td><td>2.25</td><td>22%</td>", "<tr><td>load generator</td><td>33</td><td>4.00</td><td>40%</td>")
		}
		for _, w := range append(rows, `<table id="processes">`) {
			if !strings.Contains(h.String(), w) {
				t.Errorf("HTML lacks %q", w)
			}
		}
	}
}

// TestCompareTextGolden fixes the compare table: per leg latency,
// throughput, gateway / fake CAS / load generator CPU and the ratios.
func TestCompareTextGolden(t *testing.T) {
	direct := withProcesses(false)
	direct.Gateway = nil
	through := withProcesses(false)
	through.Throughput /= 2
	through.Overall.P50 *= 1.5
	through.Overall.P99 *= 3
	res := &CompareResult{Legs: []Leg{{"direct", direct}, {"easgate", through}}, CPUs: 2,
		Skipped: map[string]string{"nginx": "disabled"}}
	var b bytes.Buffer
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare.golden.txt", b.Bytes())

	inproc := &CompareResult{Legs: []Leg{{"direct", withProcesses(true)}}, CPUs: 2}
	inproc.Legs[0].Report.Gateway = nil
	b.Reset()
	if err := inproc.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare-inprocess.golden.txt", b.Bytes())
}
