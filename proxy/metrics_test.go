package proxy

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
)

// The series resolved by label index carry the labels WithLabelValues
// gives for the same request, and only the series used are exported.
func TestMetricsSeriesLabels(t *testing.T) {
	m := newMetrics()
	dv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easgate_policy_decisions_total"}, []string{"action", "reason", "mode"})
	m.reg.MustRegister(dv)
	m.request(int(eas.CmdSync), "allow", 200)
	m.request(int(eas.CmdSync), "allow", 200)
	m.request(cmdLabelAutodiscover, "none", 404)
	m.request(cmdLabelInvalid, "odd", 999)
	m.request(int(eas.CmdOptions), "quarantine", -1)
	m.requestDuration(cmdLabelNone, 0.1)
	m.upstreamDuration(eas.Command(200), 1)
	m.reject("framing")
	m.reject("framing")
	var ds decisionSeries
	var d policy.Decision
	ds.count(dv, &d)
	d.Action, d.Enforced = policy.Block, true
	ds.count(dv, &d)
	ds.count(dv, &d)

	ctx := new(fasthttp.RequestCtx)
	ctx.Request.SetRequestURI("/metrics")
	m.handler(ctx)
	text := string(ctx.Response.Body())
	for _, want := range []string{
		`easgate_requests_total{command="Sync",decision="allow",status="200"} 2`,
		`easgate_requests_total{command="Autodiscover",decision="none",status="404"} 1`,
		`easgate_requests_total{command="invalid",decision="odd",status="other"} 1`,
		`easgate_requests_total{command="OPTIONS",decision="quarantine",status="other"} 1`,
		`easgate_request_duration_seconds_count{command="none"} 1`,
		`easgate_upstream_duration_seconds_count{command="Unknown"} 1`,
		`easgate_rejected_requests_total{reason="framing"} 2`,
		`easgate_policy_decisions_total{action="allow",mode="report",reason="none"} 1`,
		`easgate_policy_decisions_total{action="block",mode="enforce",reason="none"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s", want)
		}
	}
	for prefix, n := range map[string]int{
		"easgate_requests_total{": 4, "easgate_request_duration_seconds_count{": 1,
		"easgate_upstream_duration_seconds_count{": 1, "easgate_policy_decisions_total{": 2,
	} {
		if got := strings.Count(text, "\n"+prefix); got != n {
			t.Errorf("%d series %s...}, want %d", got, prefix, n)
		}
	}
}

// TestFinishAllocs proves that finishing a request (metrics, access-log
// line to a file or a stream) allocates nothing once its series exist.
func TestFinishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, format := range []string{"", "json", "discard"} {
		t.Run("log="+format, func(t *testing.T) {
			_, tmpl := finishBench(t, format)
			st := tmpl.st
			run := func() {
				x := exchangePool.Get().(*exchange)
				*x = *tmpl
				st.refs.Add(1)
				x.finish()
			}
			run()
			if allocs := testing.AllocsPerRun(500, run); allocs != 0 {
				t.Fatalf("%v allocations per request", allocs)
			}
		})
	}
}
