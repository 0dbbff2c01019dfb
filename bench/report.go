package bench

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a fleet run. Latencies are milliseconds. The
// JSON form is what `easbench run --json` writes, and `easbench compare
// --json` once per leg; the sampled processes are "gateway", "cas" and
// "client" (see ProcReport for their fields).
type Report struct {
	Target       string         `json:"target"`
	Started      time.Time      `json:"started"`
	DurationS    float64        `json:"duration_s"`
	Devices      int            `json:"devices"`
	DevicesSetUp int64          `json:"devices_set_up"` // completed life cycles
	Mix          map[string]int `json:"mix"`
	TimeScale    float64        `json:"time_scale"`
	HeartbeatS   float64        `json:"heartbeat_s"`
	Requests     int64          `json:"requests"`
	Errors       int64          `json:"errors"`
	Throughput   float64        `json:"throughput"` // requests/s
	BytesIn      int64          `json:"bytes_in"`
	BytesOut     int64          `json:"bytes_out"`
	HeldPingsMax int64          `json:"held_pings_max"`
	// Overall summarises every command except held Pings.
	Overall       CommandReport            `json:"overall"`
	Commands      map[string]CommandReport `json:"commands"`
	ErrorKinds    map[string]int64         `json:"error_kinds"`
	ErrorExamples map[string]string        `json:"error_examples,omitempty"`
	// PolicyAnswers counts the blocked (Status 129 ...) and denied (Status
	// 130, quarantine) answers: the gateway's decisions, not errors.
	PolicyAnswers map[string]int64 `json:"policy_answers,omitempty"`
	// Decisions counts the devices by the gateway's decision for them, as
	// the answers showed it (set by Run; nil in reports of other origin).
	Decisions *FleetDecisions `json:"decisions,omitempty"`
	// Gateway is the process sampled through RunConfig.PID (easgate or
	// nginx; absent on a direct leg).
	Gateway *ProcReport `json:"gateway,omitempty"`
	// CAS is the fake CAS's own process over the run, when `easbench
	// compare` ran it as a subprocess (CompareConfig.CASCommand).
	CAS *ProcReport `json:"cas,omitempty"`
	// Client is the load generator's own process (easbench, /proc/self)
	// over the run; set by Compare (RunConfig.SampleSelf). When CASInProcess is true the fake CAS
	// ran inside that process and Client includes its CPU and memory.
	Client       *ProcReport `json:"client,omitempty"`
	CASInProcess bool        `json:"cas_in_process,omitempty"`
	// Rounds is set by `easbench compare --rounds N` with N > 1: every
	// round of this leg in round order. This report is the run of round
	// MedianRound (1-based), the one with the median throughput.
	Rounds      []RoundResult   `json:"rounds,omitempty"`
	MedianRound int             `json:"median_round,omitempty"`
	Timeline    []TimelinePoint `json:"timeline"`
	Histogram   []HistogramBin  `json:"histogram"`
}

// FleetDecisions counts a fleet's devices by the gateway's decision, as
// each device's answers showed it when it stopped (Device.Decision):
// allowed (a Sync reached the mailbox), quarantined (easgate's emulated
// mailbox, or Status 130 denials), blocked (Status 129 and the like), and
// unknown (no answer showed one: a device that never got that far).
type FleetDecisions struct {
	Allowed     int `json:"allowed"`
	Quarantined int `json:"quarantined"`
	Blocked     int `json:"blocked"`
	Unknown     int `json:"unknown"`
}

// NotForwarded is the number of devices the gateway did not forward
// (quarantined or blocked).
func (d *FleetDecisions) NotForwarded() int { return d.Quarantined + d.Blocked }

// NotForwardedWarning is a warning when most of the fleet was not
// forwarded to the CAS, so that the run measured easgate's own quarantine
// and block answers rather than forwarding; "" otherwise.
func (r *Report) NotForwardedWarning() string {
	d := r.Decisions
	if d == nil || r.Devices == 0 || 2*d.NotForwarded() <= r.Devices {
		return ""
	}
	return fmt.Sprintf("warning: %d of %d devices (%.0f%%) were not forwarded to the CAS (%d quarantined, %d blocked): "+
		"this run measures easgate's quarantine emulation and block answers, not forwarding. To measure forwarding, "+
		"let the fleet through (policy.default_access: allow, or list its devices in the compliance file).",
		d.NotForwarded(), r.Devices, 100*float64(d.NotForwarded())/float64(r.Devices), d.Quarantined, d.Blocked)
}

// RoundResult is one leg's run in one round of `easbench compare`: its
// place in the round's order, throughput, latency and errors. A round that
// could not run has only Round, Position and Failed.
type RoundResult struct {
	Round    int     `json:"round"`    // 1-based
	Position int     `json:"position"` // 1-based place of the leg in the round's order
	ReqPerS  float64 `json:"req_per_s"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	Errors   int64   `json:"errors"`
	Failed   string  `json:"failed,omitempty"` // why the leg did not run in this round
}

// CommandReport is the per-command summary. For Ping the latency is the
// hold time.
type CommandReport struct {
	Count      int64            `json:"count"`
	Errors     int64            `json:"errors"`
	Canceled   int64            `json:"canceled,omitempty"` // cut by the end of the run
	Refused    int64            `json:"refused,omitempty"`  // blocked or denied answers (not errors)
	P50        float64          `json:"p50"`
	P90        float64          `json:"p90"`
	P99        float64          `json:"p99"`
	P999       float64          `json:"p999"`
	Mean       float64          `json:"mean"`
	Max        float64          `json:"max"`
	Throughput float64          `json:"throughput"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
}

// ProcReport is one process's resource use over a run, sampled from
// /proc/PID: resident memory at the start, its maximum and at the end (KiB),
// CPU time (user + system) used during the run, and that time as a
// percentage of the run's wall time (100 = one core busy throughout).
type ProcReport struct {
	PID         int     `json:"pid"`
	RSSStartKiB int64   `json:"rss_start_kib"`
	RSSMaxKiB   int64   `json:"rss_max_kib"`
	RSSEndKiB   int64   `json:"rss_end_kib"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	CPUPercent  float64 `json:"cpu_percent"`
}

// TimelinePoint is one slice of the run (latencies exclude held Pings).
type TimelinePoint struct {
	T          float64 `json:"t"` // seconds since start (slice end)
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
	HeldPings  int64   `json:"held_pings"`
}

// HistogramBin is one bar of the latency histogram (held Pings excluded).
type HistogramBin struct {
	Lo    float64 `json:"lo_ms"`
	Hi    float64 `json:"hi_ms"`
	Count int64   `json:"count"`
}

// ProtocolErrors is the number of protocol errors (unexpected statuses,
// bad WBXML): `easbench run --fail-on-error` fails when it is not zero.
func (r *Report) ProtocolErrors() int64 { return r.ErrorKinds["protocol"] }

func (f *fleet) report(elapsed time.Duration, procs *runProcs) *Report {
	rec := f.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()
	secs := elapsed.Seconds()
	r := &Report{
		Target: f.cfg.Target, Started: f.start, DurationS: secs, Devices: f.cfg.Devices,
		DevicesSetUp: f.setUp.Load(), Mix: f.cfg.Mix, TimeScale: f.cfg.TimeScale,
		HeartbeatS: f.cfg.Heartbeat.Seconds(), BytesIn: rec.bytesIn, BytesOut: rec.bytesOut,
		HeldPingsMax: f.maxHeld.Load(), Commands: map[string]CommandReport{},
		ErrorKinds: map[string]int64{}, ErrorExamples: map[string]string{},
	}
	for name, c := range rec.cmds {
		cr := CommandReport{Count: c.count, Errors: c.errors, Canceled: c.canceled, Refused: c.refused,
			P50: c.h.quantile(0.50), P90: c.h.quantile(0.90), P99: c.h.quantile(0.99), P999: c.h.quantile(0.999),
			Mean: c.h.mean(), Max: float64(c.h.max) / 1000}
		if secs > 0 {
			cr.Throughput = float64(c.count) / secs
		}
		if len(c.kinds) > 0 {
			cr.ErrorKinds = map[string]int64{}
			for k, v := range c.kinds {
				cr.ErrorKinds[k] = v
			}
		}
		r.Commands[name] = cr
		r.Requests += c.count
	}
	for k, v := range rec.errors {
		r.ErrorKinds[k] = v
		r.Errors += v
	}
	for k, v := range rec.lastErr {
		r.ErrorExamples[k] = v
	}
	if len(rec.policy) > 0 {
		r.PolicyAnswers = map[string]int64{}
		for k, v := range rec.policy {
			r.PolicyAnswers[k] = v
		}
	}
	f.decMu.Lock()
	dec := f.decisions
	f.decMu.Unlock()
	r.Decisions = &dec
	if secs > 0 {
		r.Throughput = float64(r.Requests) / secs
	}
	for i, sl := range rec.slices {
		t := float64(i+1) * rec.slice.Seconds()
		r.Timeline = append(r.Timeline, TimelinePoint{T: t, Requests: sl.requests, Errors: sl.errors,
			Throughput: float64(sl.requests) / rec.slice.Seconds(), P50: sl.h.quantile(0.5), P99: sl.h.quantile(0.99),
			HeldPings: sl.held})
	}
	r.Histogram = histogramBins(&rec.all, 40)
	r.Overall = CommandReport{Count: rec.all.n, P50: rec.all.quantile(0.50), P90: rec.all.quantile(0.90),
		P99: rec.all.quantile(0.99), P999: rec.all.quantile(0.999), Mean: rec.all.mean(), Max: float64(rec.all.max) / 1000}
	if secs > 0 {
		r.Overall.Throughput = float64(rec.all.n) / secs
	}
	r.Gateway, r.CAS, r.Client = reportOf(procs.gateway), reportOf(procs.cas), reportOf(procs.self)
	return r
}

// histogramBins merges the fine buckets of h into at most n log-spaced bins
// between the smallest and largest value seen.
func histogramBins(h *hist, n int) []HistogramBin {
	first, last := -1, -1
	for i, c := range h.counts {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	lo := math.Max(histLower(first), 1) / 1000
	hi := math.Min(histUpper(last), float64(h.max)+1) / 1000
	if hi <= lo {
		hi = lo * 1.01
	}
	ratio := math.Pow(hi/lo, 1/float64(n))
	bins := make([]HistogramBin, n)
	for i := range bins {
		bins[i].Lo = lo * math.Pow(ratio, float64(i))
		bins[i].Hi = lo * math.Pow(ratio, float64(i+1))
	}
	for i := first; i <= last; i++ {
		if h.counts[i] == 0 {
			continue
		}
		mid := (histLower(i) + math.Min(histUpper(i), float64(h.max)+1)) / 2 / 1000
		j := 0
		if mid > lo {
			j = int(math.Log(mid/lo) / math.Log(ratio))
		}
		j = max(0, min(j, n-1))
		bins[j].Count += h.counts[i]
	}
	return bins
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// commandOrder lists commands in life-cycle order, then the rest by name.
func (r *Report) commandOrder() []string {
	order := []string{"OPTIONS", "Provision", "Settings", "FolderSync", "Sync", "Ping", "ItemOperations", "GetAttachment", "SendMail"}
	seen := map[string]bool{}
	var out []string
	for _, c := range order {
		if _, ok := r.Commands[c]; ok {
			out = append(out, c)
			seen[c] = true
		}
	}
	var rest []string
	for c := range r.Commands {
		if !seen[c] {
			rest = append(rest, c)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// pingLabel and pingNote say what the Ping row measures: how long each
// Ping waited for its answer, which is the heartbeat when nothing changes
// and about zero when the answer comes at once (a quarantined device's
// Ping while its notice is pending, a change, an error).
const (
	pingLabel = "Ping (held: ms until answered)"
	pingNote  = "Ping row: time each Ping was held until answered (the heartbeat when nothing changed, ~0 when answered at once); the other rows and the overall latencies exclude held Pings."
)

// WriteText writes the terminal summary table.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "target %s  devices %d (set up %d)  duration %.1fs  time scale %g\n",
		r.Target, r.Devices, r.DevicesSetUp, r.DurationS, r.TimeScale)
	fmt.Fprintf(w, "requests %d (%.1f/s)  errors %d  held Pings max %d  in %s  out %s\n",
		r.Requests, r.Throughput, r.Errors, r.HeldPingsMax, byteSize(r.BytesIn), byteSize(r.BytesOut))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if d := r.Decisions; d != nil {
		fmt.Fprintf(w, "gateway decisions for the fleet (from its answers): allowed %d  quarantined %d  blocked %d  unknown %d\n",
			d.Allowed, d.Quarantined, d.Blocked, d.Unknown)
	}
	if warn := r.NotForwardedWarning(); warn != "" {
		fmt.Fprintln(w, warn)
	}
	fmt.Fprintln(tw, "command\tcount\terrors\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\treq/s\t")
	for _, name := range r.commandOrder() {
		c := r.Commands[name]
		label := name
		if name == "Ping" {
			label = pingLabel
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t\n", label, c.Count, c.Errors,
			c.P50, c.P90, c.P99, c.P999, c.Max, c.Throughput)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, ok := r.Commands["Ping"]; ok {
		fmt.Fprintln(w, pingNote)
	}
	if len(r.PolicyAnswers) > 0 {
		fmt.Fprintf(w, "policy answers (the gateway's decisions, not errors): blocked %d (Status 129 and other access statuses)  denied %d (Status 130: a quarantined device's request)\n",
			r.PolicyAnswers[KindBlocked], r.PolicyAnswers[KindDenied])
	}
	if len(r.ErrorKinds) > 0 {
		var parts []string
		for _, k := range sortedKeys(r.ErrorKinds) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, r.ErrorKinds[k]))
		}
		fmt.Fprintf(w, "errors by kind: %s\n", strings.Join(parts, " "))
		for _, k := range sortedKeys(r.ErrorExamples) {
			fmt.Fprintf(w, "  first %s: %s\n", k, r.ErrorExamples[k])
		}
	}
	for _, p := range r.processes() {
		fmt.Fprintf(w, "%s pid %d: RSS start %s max %s end %s; CPU %.2fs (%.0f%% of one core)%s\n", p.label, p.PID,
			byteSize(p.RSSStartKiB<<10), byteSize(p.RSSMaxKiB<<10), byteSize(p.RSSEndKiB<<10), p.CPUSeconds, p.CPUPercent, p.note)
	}
	if len(r.Rounds) > 0 {
		fmt.Fprintf(w, "round %d of %d (median req/s): %s\n", r.MedianRound, len(r.Rounds), roundCells(r.Rounds, r.MedianRound))
	}
	return nil
}

// roundCells lists every round's req/s, "r1 1234.5  r2 1300.0*  r3 failed",
// the median round marked with *.
func roundCells(rounds []RoundResult, median int) string {
	cells := make([]string, len(rounds))
	for i, rr := range rounds {
		switch {
		case rr.Failed != "":
			cells[i] = fmt.Sprintf("r%d failed", rr.Round)
		case rr.Round == median:
			cells[i] = fmt.Sprintf("r%d %.1f*", rr.Round, rr.ReqPerS)
		default:
			cells[i] = fmt.Sprintf("r%d %.1f", rr.Round, rr.ReqPerS)
		}
	}
	return strings.Join(cells, "  ")
}

// labelledProc is a ProcReport with the role of its process.
type labelledProc struct {
	*ProcReport
	label string
	note  string
}

// processes lists the sampled processes: gateway, fake CAS, load generator.
func (r *Report) processes() []labelledProc {
	var out []labelledProc
	if r.Gateway != nil {
		out = append(out, labelledProc{r.Gateway, "gateway", ""})
	}
	if r.CAS != nil {
		out = append(out, labelledProc{r.CAS, "fake CAS", ""})
	}
	if r.Client != nil {
		note := ""
		if r.CASInProcess {
			note = " (includes the in-process fake CAS)"
		}
		out = append(out, labelledProc{r.Client, "load generator", note})
	}
	return out
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// WriteHTML writes a self-contained page: summary table and inline SVG
// charts (latency over time, latency histogram, throughput and held Pings).
// No scripts, no external resources.
func (r *Report) WriteHTML(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>easbench report</title><style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}
svg{background:#fafafa;border:1px solid #ddd;margin:1em 0}text{font:11px sans-serif;fill:#444}
</style></head><body>`)
	fmt.Fprintf(&b, "<h1>easbench report</h1><p>Target <code>%s</code>, %d devices (%d set up), %.1f s, time scale %g, started %s.</p>",
		html.EscapeString(r.Target), r.Devices, r.DevicesSetUp, r.DurationS, r.TimeScale, r.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "<p>%d requests (%.1f/s), %d errors, at most %d Pings held.</p>", r.Requests, r.Throughput, r.Errors, r.HeldPingsMax)
	if d := r.Decisions; d != nil {
		fmt.Fprintf(&b, "<p>Gateway decisions for the fleet (from its answers): allowed %d, quarantined %d, blocked %d, unknown %d.</p>",
			d.Allowed, d.Quarantined, d.Blocked, d.Unknown)
	}
	if warn := r.NotForwardedWarning(); warn != "" {
		fmt.Fprintf(&b, "<p><strong>%s</strong></p>", html.EscapeString(warn))
	}
	b.WriteString("<table><tr><th>command</th><th>count</th><th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>req/s</th></tr>")
	for _, name := range r.commandOrder() {
		c := r.Commands[name]
		if name == "Ping" {
			name = pingLabel
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.1f</td></tr>",
			html.EscapeString(name), c.Count, c.Errors, c.P50, c.P90, c.P99, c.P999, c.Throughput)
	}
	b.WriteString("</table>")
	if len(r.ErrorKinds) > 0 {
		b.WriteString("<h2>Errors by kind</h2><ul>")
		for _, k := range sortedKeys(r.ErrorKinds) {
			fmt.Fprintf(&b, "<li>%s: %d", html.EscapeString(k), r.ErrorKinds[k])
			if ex := r.ErrorExamples[k]; ex != "" {
				fmt.Fprintf(&b, " (first: <code>%s</code>)", html.EscapeString(ex))
			}
			b.WriteString("</li>")
		}
		b.WriteString("</ul>")
	}
	if procs := r.processes(); len(procs) > 0 {
		b.WriteString(`<h2>Processes</h2><table id="processes"><tr><th>process</th><th>pid</th><th>CPU s</th><th>CPU % of one core</th>` +
			`<th>RSS start</th><th>RSS max</th><th>RSS end</th></tr>`)
		for _, p := range procs {
			fmt.Fprintf(&b, "<tr><td>%s%s</td><td>%d</td><td>%.2f</td><td>%.0f%%</td><td>%s</td><td>%s</td><td>%s</td></tr>",
				html.EscapeString(p.label), html.EscapeString(p.note), p.PID, p.CPUSeconds, p.CPUPercent,
				byteSize(p.RSSStartKiB<<10), byteSize(p.RSSMaxKiB<<10), byteSize(p.RSSEndKiB<<10))
		}
		b.WriteString("</table>")
	}
	if len(r.Rounds) > 0 {
		fmt.Fprintf(&b, `<h2>Rounds</h2><p>This report is round %d of %d, the one with the median throughput.</p>`, r.MedianRound, len(r.Rounds))
		b.WriteString(`<table id="rounds"><tr><th>round</th><th>position</th><th>req/s</th><th>p50 ms</th><th>p99 ms</th><th>errors</th></tr>`)
		for _, rr := range r.Rounds {
			mark := ""
			if rr.Round == r.MedianRound {
				mark = " (median)"
			}
			if rr.Failed != "" {
				fmt.Fprintf(&b, `<tr><td>%d</td><td>%d</td><td colspan="4">failed: %s</td></tr>`, rr.Round, rr.Position, html.EscapeString(rr.Failed))
				continue
			}
			fmt.Fprintf(&b, "<tr><td>%d%s</td><td>%d</td><td>%.1f</td><td>%.2f</td><td>%.2f</td><td>%d</td></tr>",
				rr.Round, mark, rr.Position, rr.ReqPerS, rr.P50MS, rr.P99MS, rr.Errors)
		}
		b.WriteString("</table>")
	}
	xs := make([]float64, len(r.Timeline))
	p50 := make([]float64, len(r.Timeline))
	p99 := make([]float64, len(r.Timeline))
	tput := make([]float64, len(r.Timeline))
	held := make([]float64, len(r.Timeline))
	for i, p := range r.Timeline {
		xs[i], p50[i], p99[i], tput[i], held[i] = p.T, p.P50, p.P99, p.Throughput, float64(p.HeldPings)
	}
	b.WriteString("<h2>Latency over time</h2>")
	b.WriteString(lineChart("latency-over-time", "seconds", "ms", xs, []series{{"p50", "#1f77b4", p50}, {"p99", "#d62728", p99}}))
	b.WriteString("<h2>Latency histogram</h2>")
	b.WriteString(histChart("latency-histogram", r.Histogram))
	b.WriteString("<h2>Throughput and held Pings</h2>")
	b.WriteString(lineChart("throughput", "seconds", "count", xs, []series{{"requests/s", "#2ca02c", tput}, {"held Pings", "#9467bd", held}}))
	b.WriteString("<p>" + html.EscapeString(pingNote) + "</p></body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

type series struct {
	name  string
	color string
	ys    []float64
}

const (
	chartW, chartH         = 760.0, 260.0
	padL, padR, padT, padB = 60.0, 20.0, 20.0, 40.0
)

func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func chartFrame(b *strings.Builder, id, xLabel, yLabel string, xMax, yMax float64, xFmt func(float64) string) {
	fmt.Fprintf(b, `<svg id="%s" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img">`,
		id, chartW, chartH, chartW, chartH)
	pw, ph := chartW-padL-padR, chartH-padT-padB
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`, padL, padT+ph, padL+pw, padT+ph)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`, padL, padT, padL, padT+ph)
	for i := 0; i <= 5; i++ {
		f := float64(i) / 5
		y := padT + ph - f*ph
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`, padL, y, padL+pw, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, padL-4, y+4, trimFloat(f*yMax))
		x := padL + f*pw
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x, padT+ph+15, xFmt(f*xMax))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, padL+pw/2, chartH-5, html.EscapeString(xLabel))
	fmt.Fprintf(b, `<text x="12" y="%.1f" transform="rotate(-90 12 %.1f)" text-anchor="middle">%s</text>`, padT+ph/2, padT+ph/2, html.EscapeString(yLabel))
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// lineChart draws series against xs as polylines.
func lineChart(id, xLabel, yLabel string, xs []float64, ss []series) string {
	var b strings.Builder
	xMax, yMax := 0.0, 0.0
	for _, x := range xs {
		xMax = math.Max(xMax, x)
	}
	for _, s := range ss {
		for _, y := range s.ys {
			yMax = math.Max(yMax, y)
		}
	}
	xMax, yMax = niceMax(xMax), niceMax(yMax)
	chartFrame(&b, id, xLabel, yLabel, xMax, yMax, trimFloat)
	pw, ph := chartW-padL-padR, chartH-padT-padB
	for si, s := range ss {
		var pts []string
		for i, y := range s.ys {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", padL+xs[i]/xMax*pw, padT+ph-y/yMax*ph))
		}
		fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" style="fill:%s">%s</text>`, padL+pw-120, padT+12+14*float64(si), s.color, html.EscapeString(s.name))
	}
	b.WriteString("</svg>")
	return b.String()
}

// histChart draws the latency histogram as bars on a log latency axis.
func histChart(id string, bins []HistogramBin) string {
	var b strings.Builder
	yMax := 0.0
	for _, bin := range bins {
		yMax = math.Max(yMax, float64(bin.Count))
	}
	yMax = niceMax(yMax)
	lo, hi := 1.0, 10.0
	if len(bins) > 0 {
		lo, hi = bins[0].Lo, bins[len(bins)-1].Hi
	}
	logSpan := math.Log(hi / lo)
	if logSpan <= 0 {
		logSpan = 1
	}
	xFmt := func(v float64) string { // v in 0..1 of the axis → latency label
		return trimFloat(lo*math.Exp(v*logSpan)) + "ms"
	}
	chartFrame(&b, id, "latency (log scale)", "requests", 1, yMax, xFmt)
	pw, ph := chartW-padL-padR, chartH-padT-padB
	for _, bin := range bins {
		x0 := padL + math.Log(bin.Lo/lo)/logSpan*pw
		x1 := padL + math.Log(bin.Hi/lo)/logSpan*pw
		h := float64(bin.Count) / yMax * ph
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#1f77b4"><title>%s–%s ms: %d</title></rect>`,
			x0, padT+ph-h, math.Max(x1-x0-1, 1), h, trimFloat(bin.Lo), trimFloat(bin.Hi), bin.Count)
	}
	b.WriteString("</svg>")
	return b.String()
}
