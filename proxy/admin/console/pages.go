package console

import (
	"cmp"
	"errors"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/admin"
	"github.com/easgate/easgate/proxy/config"
)

// devicePath is the console path of a device's page.
func devicePath(user, id string) string {
	return "/devices/" + url.PathEscape(user) + "/" + url.PathEscape(id)
}

// apiError shows an error of the API on the page with the API's status.
func (c *Console) apiError(ctx *fasthttp.RequestCtx, v *view, err error) {
	status := admin.ErrorStatus(err)
	msg := err.Error()
	if status == fasthttp.StatusInternalServerError {
		c.log.Error().Err(err).Str("path", string(ctx.Path())).Msg("console: the admin API failed")
	}
	c.errorPage(ctx, v, status, msg)
}

// refused logs an action the API refused, as the API logs its own.
func (c *Console) refused(ctx *fasthttp.RequestCtx, v *view, err error) {
	c.log.Info().Str("path", string(ctx.Path())).Str("actor", v.P.Name).Int("status", admin.ErrorStatus(err)).
		Str("error", err.Error()).Msg("console action refused")
}

// Count is one labelled number of a breakdown.
type Count struct {
	Key, Label string
	N          int
}

func sortedCounts(m map[string]int, label func(string) string) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		l := k
		if label != nil {
			l = label(k)
		}
		out = append(out, Count{Key: k, Label: l, N: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.N != b.N {
			return cmp.Compare(b.N, a.N)
		}
		return cmp.Compare(a.Label, b.Label)
	})
	return out
}

func familyName(slug string) string {
	if slug == "" {
		return "Not identified yet"
	}
	if f, ok := eas.ParseFamily(slug); ok {
		return f.String()
	}
	return slug
}

// dashboardData is the overview.
type dashboardData struct {
	Devices  int
	States   []Count
	Clients  []Count
	Day      Chart // quarantines and blocks by hour, the last 24 h
	Month    Chart // by day, the last 30 days
	ClientsC Chart
	Held     int64 // held long polls, at a CAS or by the quarantine
	CAS      []Upstream
	Queue    int
	Now      time.Time
	// Today: devices that entered quarantine or were blocked since 00:00
	// UTC, and the administrators' actions (the newest first, at most 5
	// shown of TodayActs).
	TodayQ, TodayB int
	TodayActs      int
	TodaySince     string
	Recent         []policy.AuditEntry
}

func (c *Console) dashboard(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	acc := c.gw.Access()
	now := c.now().UTC()
	d := dashboardData{Held: c.gw.HeldLongPolls(), CAS: c.gw.Upstreams(), Now: now}
	states := map[string]int{}
	for _, s := range policy.States {
		states[s] = 0
	}
	clients := map[string]int{}
	dayStart := now.Truncate(time.Hour).Add(-23 * time.Hour)
	monthStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -29)
	var dayQ, dayB, monQ, monB [30]int
	acc.Devices.Each(func(r *policy.DeviceRecord) {
		d.Devices++
		st := r.State
		if st == "" {
			st = "undecided"
		}
		states[st]++
		clients[r.Client]++
		var at time.Time
		q := false
		switch r.State {
		case policy.DeviceQuarantined, policy.DeviceDiscovery:
			at, q = r.QuarantinedAt, true
			d.Queue++
		case policy.DeviceBlocked:
			at = r.DecidedAt
		default:
			return
		}
		if at.IsZero() {
			return
		}
		// A time ahead of this clock (another node's) counts as now.
		if at = at.UTC(); at.After(now) {
			at = now
		}
		if !at.Before(dayStart) {
			i := int(at.Sub(dayStart) / time.Hour)
			if q {
				dayQ[i]++
			} else {
				dayB[i]++
			}
		}
		if !at.Before(monthStart) {
			i := int(at.Sub(monthStart) / (24 * time.Hour))
			if q {
				monQ[i]++
			} else {
				monB[i]++
			}
		}
	})
	for _, s := range policy.States {
		d.States = append(d.States, Count{Key: s, Label: s, N: states[s]})
	}
	if n := states["undecided"]; n > 0 {
		d.States = append(d.States, Count{Key: "", Label: "undecided", N: n})
	}
	d.Clients = sortedCounts(clients, familyName)
	var hours, days []string
	for i := range 24 {
		hours = append(hours, dayStart.Add(time.Duration(i)*time.Hour).Format("15:04"))
	}
	for i := range 30 {
		days = append(days, monthStart.AddDate(0, 0, i).Format("Jan 2"))
	}
	d.Day = barChart("Entered quarantine or blocked, by hour (UTC), last 24 hours", hours, 6, []Series{
		{Name: "quarantined", Class: "s-quarantined", Values: dayQ[:24]},
		{Name: "blocked", Class: "s-blocked", Values: dayB[:24]},
	})
	d.Month = barChart("Entered quarantine or blocked, by day (UTC), last 30 days", days, 5, []Series{
		{Name: "quarantined", Class: "s-quarantined", Values: monQ[:]},
		{Name: "blocked", Class: "s-blocked", Values: monB[:]},
	})
	d.ClientsC = hbarChart("Devices by client family", d.Clients, 10)
	d.TodayQ, d.TodayB = monQ[29], monB[29]
	d.TodaySince = monthStart.AddDate(0, 0, 29).Format(time.RFC3339)
	today, err := c.api.Audit(admin.AuditQuery{Since: d.TodaySince, Limit: admin.MaxPageSize})
	if err != nil {
		c.apiError(ctx, v, err)
		return
	}
	d.TodayActs = len(today)
	slices.Reverse(today)
	d.Recent = today[:min(len(today), 5)]
	v.Title, v.Nav, v.Data = "Dashboard", "dashboard", d
	c.render(ctx, fasthttp.StatusOK, "dashboard", v)
}

// deviceFilter is the devices page's filter form.
type deviceFilter struct {
	Q, User, State, Reason, Client, OS, SeenSince, Sort, PageToken string
	PageSize                                                       int
}

func (f *deviceFilter) query() admin.DeviceQuery {
	return admin.DeviceQuery{User: f.User, State: f.State, Reason: f.Reason, Client: f.Client, OS: f.OS, Q: f.Q,
		SeenSince: f.SeenSince, Sort: f.Sort, PageToken: f.PageToken, PageSize: f.PageSize}
}

// values is the filter as a query string, without the page token.
func (f *deviceFilter) values() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"q", f.Q}, {"user", f.User}, {"state", f.State}, {"reason", f.Reason}, {"client", f.Client},
		{"os", f.OS}, {"seen_since", f.SeenSince}, {"sort", f.Sort}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	if f.PageSize != 0 && f.PageSize != pageSize {
		v.Set("page_size", strconv.Itoa(f.PageSize))
	}
	return v
}

// pageSize is the console's page of devices.
const pageSize = 50

func readDeviceFilter(args *fasthttp.Args) (deviceFilter, error) {
	f := deviceFilter{Q: string(args.Peek("q")), User: string(args.Peek("user")), State: string(args.Peek("state")),
		Reason: string(args.Peek("reason")), Client: string(args.Peek("client")), OS: string(args.Peek("os")),
		SeenSince: string(args.Peek("seen_since")), Sort: string(args.Peek("sort")), PageToken: string(args.Peek("page_token")),
		PageSize: pageSize}
	if s := string(args.Peek("page_size")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > admin.MaxPageSize {
			return f, errors.New("page size " + strconv.Quote(s) + ": want a number from 1 to " + strconv.Itoa(admin.MaxPageSize))
		}
		f.PageSize = n
	}
	return f, nil
}

// devicesData is the devices page.
type devicesData struct {
	Filter     deviceFilter
	List       admin.DeviceList
	Next       string // the next page's URL
	First      string // the first page's URL, when not on it
	Export     string // the CSV export URL
	States     []string
	Clients    []Count
	Reasons    []string
	SortKeys   []string
	PageSizes  []int
	Filtered   bool
	ShownFirst int
	ShownLast  int
}

func (c *Console) devices(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	v.Title, v.Nav = "Devices", "devices"
	if string(ctx.QueryArgs().Peek("done")) == admin.ActForget {
		v.Flash = doneMessages[admin.ActForget]
	}
	f, err := readDeviceFilter(ctx.QueryArgs())
	d := devicesData{Filter: f, States: policy.States, SortKeys: policy.SortKeys, Reasons: reasonNames(), PageSizes: []int{25, 50, 100, 250, 1000}}
	if !slices.Contains(d.PageSizes, f.PageSize) {
		d.PageSizes = append(d.PageSizes, f.PageSize)
		slices.Sort(d.PageSizes)
	}
	for i := eas.Family(0); i.Slug() != "unknown" || i == 0; i++ {
		d.Clients = append(d.Clients, Count{Key: i.Slug(), Label: i.String()})
	}
	d.Filtered = len(f.values()) > 0
	status := fasthttp.StatusOK
	if err == nil {
		d.List, err = c.api.ListDevices(f.query())
	}
	if err != nil {
		v.Error = err.Error()
		status = admin.ErrorStatus(err)
		if status == fasthttp.StatusInternalServerError {
			status = fasthttp.StatusBadRequest
		}
	}
	q := f.values()
	if d.List.NextPageToken != "" {
		q.Set("page_token", d.List.NextPageToken)
		d.Next = "/devices?" + q.Encode()
		q.Del("page_token")
	}
	if f.PageToken != "" {
		d.First = "/devices?" + q.Encode()
	}
	d.Export = "/devices.csv?" + q.Encode()
	if n := len(d.List.Devices); n > 0 {
		off := d.List.Total - n
		if d.List.NextPageToken != "" {
			if o, err := strconv.Atoi(pageOffset(d.List.NextPageToken)); err == nil {
				off = o - n
			}
		}
		d.ShownFirst, d.ShownLast = off+1, off+n
	}
	v.Data = d
	c.render(ctx, status, "devices", v)
}

// pageOffset reads the offset out of an API page token (base64 of
// "o<offset>"); "" when it is not one.
func pageOffset(tok string) string {
	b, err := decodeToken(tok)
	if err != nil || len(b) < 2 || b[0] != 'o' {
		return ""
	}
	return string(b[1:])
}

func reasonNames() []string {
	var out []string
	for r := policy.Reason(1); ; r++ {
		s := r.String()
		if _, ok := policy.ParseReason(s); !ok || slices.Contains(out, s) {
			break
		}
		out = append(out, s)
	}
	return out
}

// devicesCSV exports every device the filter matches (up to the API's
// largest page), in the API's CSV form.
func (c *Console) devicesCSV(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	f, err := readDeviceFilter(ctx.QueryArgs())
	if err != nil {
		c.errorPage(ctx, v, fasthttp.StatusBadRequest, err.Error())
		return
	}
	f.PageSize, f.PageToken = admin.MaxPageSize, ""
	var all []admin.DeviceView
	for {
		l, err := c.api.ListDevices(f.query())
		if err != nil {
			c.apiError(ctx, v, err)
			return
		}
		all = append(all, l.Devices...)
		if l.NextPageToken == "" || len(all) >= 100*admin.MaxPageSize {
			break
		}
		f.PageToken = l.NextPageToken
	}
	ctx.SetContentType("text/csv; charset=utf-8")
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="easgate-devices.csv"`)
	ctx.SetBody(admin.DevicesCSV(all))
}

// deviceData is a device's page.
type deviceData struct {
	D           admin.DeviceDetail
	Path        string
	Audit       []policy.AuditEntry
	Predecessor string // its page, when the device probably replaces another
	Info        [][2]string
}

func (c *Console) device(ctx *fasthttp.RequestCtx, v *view, args []string) {
	v.Flash = doneMessages[string(ctx.QueryArgs().Peek("done"))]
	c.showDevice(ctx, v, args, fasthttp.StatusOK)
}

func (c *Console) showDevice(ctx *fasthttp.RequestCtx, v *view, args []string, status int) {
	det, err := c.api.Device(args[0], args[1])
	if err != nil {
		c.apiError(ctx, v, err)
		return
	}
	r := &det.Device
	d := deviceData{D: det, Path: devicePath(r.User, r.DeviceID)}
	if r.SuccessorOf != "" {
		d.Predecessor = devicePath(r.User, r.SuccessorOf)
	}
	for _, kv := range [][2]string{
		{"Model", r.Info.Model}, {"Friendly name", r.Info.FriendlyName}, {"OS", r.Info.OS}, {"OS language", r.Info.OSLanguage},
		{"IMEI", r.Info.IMEI}, {"Phone number", r.Info.PhoneNumber}, {"Mobile operator", r.Info.MobileOperator},
	} {
		if kv[1] != "" {
			d.Info = append(d.Info, kv)
		}
	}
	if d.Audit, err = c.api.Audit(admin.AuditQuery{User: r.User, DeviceID: r.DeviceID, Limit: 50}); err != nil {
		c.apiError(ctx, v, err)
		return
	}
	slices.Reverse(d.Audit)
	v.Title, v.Nav, v.Data = r.DeviceID+" of "+r.User, "devices", d
	c.render(ctx, status, "device", v)
}

// deviceAction applies the button pressed on a device's page, through
// API.Apply (a read-only admin is refused there, as by the API).
func (c *Console) deviceAction(ctx *fasthttp.RequestCtx, v *view, args []string) {
	act := formValue(ctx, "action")
	req := admin.Request{Action: act, User: args[0], DeviceID: args[1], Note: formValue(ctx, "note")}
	if act == "allow-like" {
		req.Action, req.Like = admin.ActAllow, formValue(ctx, "like")
	}
	e, err := c.api.Apply(v.P, req)
	if err != nil {
		c.refused(ctx, v, err)
		v.Error = "Not done: " + err.Error()
		status := admin.ErrorStatus(err)
		if status == fasthttp.StatusNotFound && act != admin.ActForget {
			if _, derr := c.api.Device(args[0], args[1]); derr != nil {
				c.apiError(ctx, v, err)
				return
			}
		}
		c.showDevice(ctx, v, args, status)
		return
	}
	if e.Action == admin.ActForget {
		seeOther(ctx, "/devices?done=forget")
		return
	}
	seeOther(ctx, devicePath(e.User, e.DeviceID)+"?done="+url.QueryEscape(e.Action))
}

// queueData is the quarantine queue.
type queueData struct {
	Devices []admin.DeviceView
	Total   int
	Done    string
}

func (c *Console) queue(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	c.showQueue(ctx, v, fasthttp.StatusOK)
}

func (c *Console) showQueue(ctx *fasthttp.RequestCtx, v *view, status int) {
	var d queueData
	for _, st := range []string{policy.DeviceQuarantined, policy.DeviceDiscovery} {
		l, err := c.api.ListDevices(admin.DeviceQuery{State: st, PageSize: admin.MaxPageSize})
		if err != nil {
			c.apiError(ctx, v, err)
			return
		}
		d.Devices = append(d.Devices, l.Devices...)
		d.Total += l.Total
	}
	slices.SortStableFunc(d.Devices, func(a, b admin.DeviceView) int {
		return b.QuarantinedAt.Compare(a.QuarantinedAt)
	})
	if n := ctx.QueryArgs().GetUintOrZero("done"); n > 0 {
		d.Done = strconv.Itoa(n)
	}
	v.Title, v.Nav, v.Data = "Quarantine queue", "queue", d
	c.render(ctx, status, "queue", v)
}

// queueAction applies one action to the devices ticked in the queue, in
// one API.ApplyAll (one audit entry each, marked bulk).
func (c *Console) queueAction(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	var refs []admin.DeviceRef
	for _, s := range ctx.PostArgs().PeekMulti("device") {
		u, id, ok := strings.Cut(string(s), "/")
		uu, err1 := url.PathUnescape(u)
		ii, err2 := url.PathUnescape(id)
		if !ok || err1 != nil || err2 != nil {
			c.errorPage(ctx, v, fasthttp.StatusBadRequest, "The form named a device this console does not know.")
			return
		}
		refs = append(refs, admin.DeviceRef{User: uu, DeviceID: ii})
	}
	act := formValue(ctx, "action")
	es, err := c.api.ApplyAll(v.P, act, formValue(ctx, "note"), refs)
	if err != nil {
		c.refused(ctx, v, err)
		v.Error = "Not done: " + err.Error()
		c.showQueue(ctx, v, admin.ErrorStatus(err))
		return
	}
	seeOther(ctx, "/queue?done="+strconv.Itoa(len(es))+"&action="+url.QueryEscape(act))
}

// auditData is the audit trail page.
type auditData struct {
	User, DeviceID, Actor, Since string
	Limit                        int
	Entries                      []policy.AuditEntry
	Export                       string
	Filtered                     bool
}

func (c *Console) readAudit(ctx *fasthttp.RequestCtx) (auditData, error) {
	a := ctx.QueryArgs()
	d := auditData{User: string(a.Peek("user")), DeviceID: string(a.Peek("device_id")), Actor: string(a.Peek("actor")),
		Since: string(a.Peek("since")), Limit: 200}
	if s := string(a.Peek("limit")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > admin.MaxPageSize {
			return d, errors.New("limit " + strconv.Quote(s) + ": want a number from 1 to " + strconv.Itoa(admin.MaxPageSize))
		}
		d.Limit = n
	}
	q := url.Values{}
	for _, kv := range [][2]string{{"user", d.User}, {"device_id", d.DeviceID}, {"actor", d.Actor}, {"since", d.Since}} {
		if kv[1] != "" {
			q.Set(kv[0], kv[1])
		}
	}
	d.Filtered = len(q) > 0
	d.Export = "/audit.csv?" + q.Encode()
	var err error
	d.Entries, err = c.api.Audit(admin.AuditQuery{User: d.User, DeviceID: d.DeviceID, Actor: d.Actor, Since: d.Since, Limit: d.Limit})
	return d, err
}

func (c *Console) audit(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	d, err := c.readAudit(ctx)
	status := fasthttp.StatusOK
	if err != nil {
		v.Error = err.Error()
		status = fasthttp.StatusBadRequest
	}
	slices.Reverse(d.Entries)
	v.Title, v.Nav, v.Data = "Audit trail", "audit", d
	c.render(ctx, status, "audit", v)
}

func (c *Console) auditCSV(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	d, err := c.readAudit(ctx)
	if err != nil {
		c.errorPage(ctx, v, fasthttp.StatusBadRequest, err.Error())
		return
	}
	ctx.SetContentType("text/csv; charset=utf-8")
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="easgate-audit.csv"`)
	ctx.SetBody(admin.AuditCSV(d.Entries))
}

// reportData is the impact report page.
type reportData struct {
	Since     string
	Candidate bool
	Name      string // the candidate's file name
	Text      string // the candidate as pasted, shown again
	Problems  []Problem
	Rep       *admin.Report
	States    []Count
	Actions   []Count
	Reasons   []Count
	Clients   []Count
}

// Problem is one error of a candidate config, with its line shown.
type Problem struct {
	Line, Column int
	Path, Msg    string
	Hint         string
	Source       string // the line of the file
}

func (c *Console) report(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	since := string(ctx.QueryArgs().Peek("since"))
	d := reportData{Since: since}
	rep, err := c.api.Report(since)
	status := fasthttp.StatusOK
	if err != nil {
		v.Error, status = err.Error(), admin.ErrorStatus(err)
	} else {
		d.setReport(&rep)
	}
	v.Title, v.Nav, v.Data = "Impact report", "report", d
	c.render(ctx, status, "report", v)
}

func (d *reportData) setReport(r *admin.Report) {
	d.Rep = r
	d.States = sortedCounts(r.ByState, nil)
	d.Actions = sortedCounts(r.ByAction, nil)
	d.Reasons = sortedCounts(r.ByReason, nil)
	d.Clients = sortedCounts(r.ByClient, familyName)
}

// maxCandidate bounds a pasted or uploaded candidate config.
const maxCandidate = config.MaxFileSize

// reportCandidate evaluates a candidate config pasted or uploaded: its
// errors with line and column, or its impact on the devices the gateway
// has seen. The candidate is built read-only and in memory (its
// state.path is ignored: the running gateway's inventory is the input).
func (c *Console) reportCandidate(ctx *fasthttp.RequestCtx, v *view, _ []string) {
	v.Title, v.Nav = "Impact report", "report"
	d := reportData{Since: formValue(ctx, "since"), Candidate: true, Name: "candidate.yaml"}
	data := []byte(formValue(ctx, "config"))
	if f, err := ctx.FormFile("file"); err == nil && f.Size > 0 {
		if f.Size > maxCandidate {
			v.Error = "The uploaded file is larger than " + strconv.Itoa(maxCandidate) + " bytes."
			v.Data = d
			c.render(ctx, fasthttp.StatusRequestEntityTooLarge, "report", v)
			return
		}
		fh, err := f.Open()
		if err == nil {
			data, err = io.ReadAll(io.LimitReader(fh, maxCandidate))
			_ = fh.Close()
		}
		if err != nil {
			v.Error = "The uploaded file could not be read."
			v.Data = d
			c.render(ctx, fasthttp.StatusBadRequest, "report", v)
			return
		}
		d.Name = safeFileName(f.Filename)
	}
	d.Text = string(data)
	if strings.TrimSpace(d.Text) == "" {
		v.Error = "Paste a config or choose a file to evaluate."
		v.Data = d
		c.render(ctx, fasthttp.StatusBadRequest, "report", v)
		return
	}
	cand, err := config.Parse(d.Name, data)
	if err != nil {
		d.Problems = problems(err, data)
		v.Error = "The candidate config has " + plural(len(d.Problems), "error") + "; nothing was evaluated."
		v.Data = d
		c.render(ctx, fasthttp.StatusUnprocessableEntity, "report", v)
		return
	}
	cand.State.Path = ""
	acc, err := access.Build(cand, c.log, access.Options{ReadOnly: true})
	if err != nil {
		d.Problems = problems(err, data)
		v.Error = "The candidate's policy could not be built."
		v.Data = d
		c.render(ctx, fasthttp.StatusUnprocessableEntity, "report", v)
		return
	}
	defer acc.Close()
	rep, err := c.api.ReportWith(acc, d.Since)
	if err != nil {
		c.apiError(ctx, v, err)
		return
	}
	d.setReport(&rep)
	v.Data = d
	c.render(ctx, fasthttp.StatusOK, "report", v)
}

// problems lists a config error: each positioned error of a
// config.Errors with its source line, else the error as one problem.
func problems(err error, data []byte) []Problem {
	lines := strings.Split(string(data), "\n")
	var es config.Errors
	if !errors.As(err, &es) {
		return []Problem{{Msg: err.Error()}}
	}
	out := make([]Problem, 0, len(es))
	for _, e := range es {
		p := Problem{Line: e.Line, Column: e.Column, Path: e.Path, Msg: e.Msg, Hint: e.Hint}
		if e.Line > 0 && e.Line <= len(lines) {
			p.Source = strings.TrimRight(lines[e.Line-1], "\r")
		}
		out = append(out, p)
	}
	return out
}

// safeFileName keeps the base name of an uploaded file, for messages.
func safeFileName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	if s == "" || len(s) > 128 {
		return "candidate.yaml"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if w, ok := strings.CutSuffix(what, "y"); ok {
		return strconv.Itoa(n) + " " + w + "ies"
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// doneMessages confirm an action after its redirect (fixed texts: the
// query names an action, never a message).
var doneMessages = map[string]string{
	admin.ActAllow:      "Approved. The device's held requests were answered; its next request is allowed.",
	admin.ActBlock:      "Blocked. The device's held requests got the block answer.",
	admin.ActQuarantine: "Quarantined.",
	admin.ActDefault:    "The override was removed: the policy decides again.",
	admin.ActForget:     "The device was forgotten.",
}

func pathEscape(s string) string { return url.PathEscape(s) }
