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
	return f.report(10*time.Second, &runProcs{})
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
		var m map[string]any
		reportJSON(t, r, &m)
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
	res := &CompareResult{Legs: []Leg{{Name: "direct", Report: direct}, {Name: "easgate", Report: through}}, CPUs: 2,
		Skipped: map[string]string{"nginx": "disabled"}}
	var b bytes.Buffer
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare.golden.txt", b.Bytes())

	inproc := &CompareResult{Legs: []Leg{{Name: "direct", Report: withProcesses(true)}}, CPUs: 2}
	inproc.Legs[0].Report.Gateway = nil
	b.Reset()
	if err := inproc.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare-inprocess.golden.txt", b.Bytes())
}

// roundsResult is a three-round compare of the four legs: the rows are
// the median rounds, nginx's round 2 failed and easgate's round 3 had
// errors.
func roundsResult() *CompareResult {
	legRep := func(gw bool, tput, p50, p99 float64, errs int64) *Report {
		r := withProcesses(false)
		if !gw {
			r.Gateway = nil
		}
		r.Throughput, r.Overall.P50, r.Overall.P99, r.Errors = tput, p50, p99, errs
		return r
	}
	rr := func(round, pos int, tput, p99 float64, errs int64) RoundResult {
		return RoundResult{Round: round, Position: pos, ReqPerS: tput, P50MS: p99 / 4, P99MS: p99, Errors: errs}
	}
	direct := Leg{Name: "direct", Median: 3, Report: legRep(false, 20000, 1, 4, 0),
		Rounds: []RoundResult{rr(1, 1, 21000, 3.9, 0), rr(2, 3, 19000, 4.4, 0), rr(3, 2, 20000, 4, 0)}}
	easgate := Leg{Name: "easgate", Median: 1, Report: legRep(true, 17000, 1.5, 8, 0),
		Rounds: []RoundResult{rr(1, 2, 17000, 8, 0), rr(2, 1, 16000, 9, 0), rr(3, 3, 18500, 7, 2)}}
	nginx := Leg{Name: "nginx", Median: 3, Report: legRep(true, 18000, 1.25, 6, 0),
		Rounds: []RoundResult{rr(1, 3, 19000, 5.5, 0), {Round: 2, Position: 2, Failed: "nginx exited: signal: killed"}, rr(3, 1, 18000, 6, 0)}}
	bare := Leg{Name: "bare", Median: 2, Report: legRep(true, 20000, 1.1, 5, 0),
		Rounds: []RoundResult{rr(1, 4, 21250, 5, 0), rr(2, 4, 20000, 5, 0), rr(3, 4, 18500, 5, 0)}}
	for _, l := range []Leg{direct, easgate, nginx, bare} {
		l.Report.Rounds, l.Report.MedianRound = l.Rounds, l.Median
	}
	return &CompareResult{Legs: []Leg{direct, easgate, nginx, bare}, CPUs: 2, Rounds: 3, Skipped: map[string]string{}}
}

// TestCompareRoundsTextGolden fixes the lines under the table with more
// than one round: every round's req/s per leg with the spread, and the
// per-round ratios easgate ÷ nginx, easgate ÷ bare and bare ÷ nginx with
// their medians.
func TestCompareRoundsTextGolden(t *testing.T) {
	res := roundsResult()
	var b bytes.Buffer
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare-rounds.golden.txt", b.Bytes())
	out := b.String()
	for _, want := range []string{
		// Rows of the median rounds and ratios of these: 17000 / 20000.
		"req/s ×", " 0.85\n",
		"direct req/s   r1 21000.0   r2 19000.0   r3 20000.0*  spread 19000.0–21000.0 = 10.0%\n",
		"easgate req/s  r1 17000.0*  r2 16000.0   r3 18500.0   spread 16000.0–18500.0 = 14.7%; errors by round 0/0/2\n",
		"nginx req/s    r1 19000.0   r2 failed    r3 18000.0*  spread 18000.0–19000.0 = 5.6%\n",
		// Round 2 has no nginx figure: rounds 1 and 3 only; lower-middle median.
		"easgate ÷ nginx req/s by round: r1 0.89  r3 1.03; median 0.89\n",
		"easgate ÷ bare req/s by round: r1 0.80  r2 0.80  r3 1.00; median 0.80\n",
		"bare ÷ nginx req/s by round: r1 1.12  r3 1.03; median 1.03\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("compare text lacks %q:\n%s", want, out)
		}
	}

	// One round: no rounds lines, as before --rounds existed.
	one := roundsResult()
	one.Rounds = 1
	b.Reset()
	if err := one.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "rounds") || strings.Contains(b.String(), "÷") {
		t.Errorf("one round prints round lines:\n%s", b.String())
	}
}

// TestReportRounds: a compare leg's report with rounds lists them in the
// JSON ("rounds", "median_round"), the text and the HTML.
func TestReportRounds(t *testing.T) {
	r := roundsResult().Legs[2].Report // nginx: a failed round
	var m struct {
		Rounds      []map[string]any `json:"rounds"`
		MedianRound int              `json:"median_round"`
	}
	reportJSON(t, r, &m)
	if len(m.Rounds) != 3 || m.MedianRound != 3 {
		t.Fatalf("JSON rounds %v, median_round %d", m.Rounds, m.MedianRound)
	}
	for _, k := range []string{"round", "position", "req_per_s", "p50_ms", "p99_ms", "errors"} {
		if _, ok := m.Rounds[0][k]; !ok {
			t.Errorf("JSON round lacks %q: %v", k, m.Rounds[0])
		}
	}
	if m.Rounds[0]["req_per_s"] != 19000.0 || m.Rounds[0]["p99_ms"] != 5.5 || m.Rounds[0]["position"] != 3.0 {
		t.Errorf("round 1: %v", m.Rounds[0])
	}
	if _, ok := m.Rounds[0]["failed"]; ok || m.Rounds[1]["failed"] != "nginx exited: signal: killed" {
		t.Errorf("failed: %v / %v", m.Rounds[0]["failed"], m.Rounds[1]["failed"])
	}
	if bytes.Contains(mustJSON(t, fixedReport()), []byte(`"rounds"`)) || bytes.Contains(mustJSON(t, fixedReport()), []byte(`"median_round"`)) {
		t.Errorf("a report without rounds has rounds in its JSON")
	}

	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if want := "round 3 of 3 (median req/s): r1 19000.0  r2 failed  r3 18000.0*\n"; !strings.Contains(txt.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, txt.String())
	}

	var h bytes.Buffer
	if err := r.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<table id="rounds">`, "This report is round 3 of 3",
		"<tr><td>1</td><td>3</td><td>19000.0</td><td>1.38</td><td>5.50</td><td>0</td></tr>",
		`<tr><td>2</td><td>2</td><td colspan="4">failed: nginx exited: signal: killed</td></tr>`,
		"<tr><td>3 (median)</td><td>1</td><td>18000.0</td>"} {
		if !strings.Contains(h.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func mustJSON(t *testing.T, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// reportJSON writes r as JSON and decodes it into dst: the JSON must be
// valid and decode into the shape the caller expects.
func reportJSON(t *testing.T, r *Report, dst any) {
	t.Helper()
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js.Bytes(), dst); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, js.String())
	}
}
