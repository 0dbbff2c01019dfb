package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
)

// The API's reads and actions as Go calls, for in-process clients (the web
// console, proxy/admin/console): the same validation, the same answers and,
// for actions, the same Apply/commit path and audit trail as the HTTP API.

// DeviceQuery is a device list request: the filter, sorting and paging of
// GET /api/v1/devices, as strings the way a query string carries them.
type DeviceQuery struct {
	User, State, Reason, Client, OS, Q string
	SeenSince                          string // "30d", "12h" or RFC 3339
	Sort                               string
	PageToken                          string
	PageSize                           int // 0: DefaultPageSize
}

// ListDevices answers a device list request as GET /api/v1/devices does.
func (a *API) ListDevices(q DeviceQuery) (DeviceList, error) {
	acc := a.gw.Access()
	f := policy.DeviceFilter{State: q.State, Reason: q.Reason, Client: q.Client, OS: q.OS, Q: q.Q, User: q.User}
	var err error
	if f.SeenSince, err = ParseSince(q.SeenSince, a.now()); err != nil {
		return DeviceList{}, badRequest("seen_since %v", err)
	}
	if err := a.checkFilter(acc, &f); err != nil {
		return DeviceList{}, err
	}
	size := q.PageSize
	switch {
	case size == 0:
		size = DefaultPageSize
	case size < 0 || size > MaxPageSize:
		return DeviceList{}, badRequest("page_size %d: want a number from 1 to %d", size, MaxPageSize)
	}
	off, err := parsePageToken(q.PageToken)
	if err != nil {
		return DeviceList{}, err
	}
	page, err := acc.Devices.List(&f, q.Sort, off, size)
	if err != nil {
		return DeviceList{}, badRequest("%v", err)
	}
	return DeviceList{Devices: a.views(acc, page.Devices), Total: page.Total, NextPageToken: pageToken(page.Next)}, nil
}

// Device answers GET /api/v1/devices/{user}/{device_id}: the record, its
// override, quarantine and probable predecessor, and the policy's
// decision now with its explain trace.
func (a *API) Device(user, device string) (DeviceDetail, error) {
	acc := a.gw.Access()
	rec, err := a.find(acc, user, device)
	if err != nil {
		return DeviceDetail{}, err
	}
	c, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	d, steps := acc.Engine.Explain(c, Subject(&rec, a.now(), acc.Rules))
	return DeviceDetail{Device: a.views(acc, []policy.DeviceRecord{rec})[0], Decision: decisionView(&d), Steps: steps}, nil
}

// AuditQuery is an audit trail request, as GET /api/v1/audit takes it.
type AuditQuery struct {
	User, DeviceID, Actor string
	Since                 string // "30d", "12h" or RFC 3339
	Limit                 int    // the newest Limit entries; 0: DefaultPageSize
}

// Audit answers an audit trail request: the matching entries, oldest
// first.
func (a *API) Audit(q AuditQuery) ([]policy.AuditEntry, error) {
	acc := a.gw.Access()
	f := policy.AuditFilter{User: q.User, DeviceID: q.DeviceID, Actor: q.Actor}
	var err error
	if f.Since, err = ParseSince(q.Since, a.now()); err != nil {
		return nil, badRequest("since %v", err)
	}
	if f.User != "" {
		if f.User, err = acc.Engine.CanonicalUser(f.User); err != nil {
			return nil, badRequest("user: %v", err)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if limit > MaxPageSize {
		return nil, badRequest("limit %d is too large: at most %d", limit, MaxPageSize)
	}
	entries, err := policy.ReadAudit(acc.Audit.Store(), acc.Audit, f, limit)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []policy.AuditEntry{}
	}
	return entries, nil
}

// Report builds the impact report of the running policy for the devices
// seen since sinceArg ("" is 30 days).
func (a *API) Report(sinceArg string) (Report, error) {
	return a.ReportWith(a.gw.Access(), sinceArg)
}

// ReportWith builds the impact report of acc's policy (a candidate
// config's access state) for the devices the running gateway has seen
// since sinceArg ("" is 30 days).
func (a *API) ReportWith(acc *access.Access, sinceArg string) (Report, error) {
	if sinceArg == "" {
		sinceArg = "30d"
	}
	now := a.now()
	since, err := ParseSince(sinceArg, now)
	if err != nil {
		return Report{}, badRequest("since %v", err)
	}
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur := a.gw.Access()
	rules := acc.Rules
	if rules == nil {
		rules = cur.Rules
	}
	return BuildReport(c, acc.Engine, rules, cur.Devices, since, now), nil
}

// DeviceRef names one device.
type DeviceRef struct{ User, DeviceID string }

// ApplyAll carries out one action on several named devices (the console's
// multi-select) as one bulk action: every device is found first, and
// nothing is done when one is not; then the overrides are written in one
// store transaction and the audit entries in another, as a filtered bulk
// action does, each entry marked bulk.
func (a *API) ApplyAll(p Principal, action, note string, devs []DeviceRef) ([]policy.AuditEntry, error) {
	if p.Role < RoleOperate {
		return nil, forbidden(p)
	}
	switch action {
	case ActAllow, ActBlock, ActQuarantine, ActDefault, ActForget:
	default:
		return nil, notFound("unknown action %q: want one of %s", action, strings.Join(Actions, ", "))
	}
	if len(note) > maxNote {
		return nil, badRequest("note is %d bytes; at most %d", len(note), maxNote)
	}
	if len(devs) == 0 {
		return nil, badRequest("select at least one device")
	}
	if len(devs) > MaxPageSize {
		return nil, badRequest("%d devices selected; at most %d at once", len(devs), MaxPageSize)
	}
	a.act.Lock()
	defer a.act.Unlock()
	acc := a.gw.Access()
	recs := make([]policy.DeviceRecord, 0, len(devs))
	seen := map[string]bool{}
	for _, d := range devs {
		rec, err := a.find(acc, d.User, d.DeviceID)
		if err != nil {
			return nil, err
		}
		if k := rec.Key(); !seen[k] {
			seen[k] = true
			recs = append(recs, rec)
		}
	}
	return a.commit(acc, p, Request{Action: action, Note: note, Bulk: len(recs) > 1}, recs)
}

func forbidden(p Principal) error {
	return &apiError{fasthttp.StatusForbidden, "forbidden", p.Name + " has role " + p.Role.String() + "; actions need operate"}
}

// ErrorStatus is the HTTP status the API answers err with: 400 for bad
// input, 403, 404, 409 and so on; 500 for anything else.
func ErrorStatus(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status
	}
	return http.StatusInternalServerError
}

// Authenticate finds the token whose secret is secret, comparing every
// token in constant time as the API's bearer check does. The console
// keeps a token only in its server-side session and authenticates it
// again on every request, so a token removed or given another role by a
// reload takes effect at once.
func Authenticate(tokens []Token, secret []byte) (Principal, bool) {
	if len(secret) == 0 || len(tokens) == 0 {
		return Principal{}, false
	}
	return match(tokens, secret)
}
