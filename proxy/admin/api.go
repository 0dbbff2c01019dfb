package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
)

// Gateway is what the API needs of the running gateway. Its methods are
// safe for concurrent use and return quickly.
type Gateway interface {
	// Access is the current configuration's access state (engine, device
	// table, overrides, audit trail, store).
	Access() *access.Access
	// Tokens are the current configuration's admin tokens.
	Tokens() []Token
	// Wake makes the device's held requests re-decide now, in the
	// background (on this node).
	Wake(user, device string)
	// Quarantine reports the device's emulated quarantine, if any.
	Quarantine(user, device string) (QuarantineInfo, bool)
}

// QuarantineInfo is what the quarantine emulation knows of a device.
type QuarantineInfo struct {
	EnteredAt       time.Time `json:"entered_at"`
	NoticeDelivered bool      `json:"notice_delivered"`
}

// Limits of the API's answers.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
	maxBodyBytes    = 64 << 10
	maxNote         = 1024
)

// API serves /api/v1 and guards the admin listener.
type API struct {
	gw  Gateway
	log zerolog.Logger
	now func() time.Time
	// act serialises admin actions: one action's before/override/audit
	// sequence is never interleaved with another's.
	act sync.Mutex
	// guesses counts wrong tokens per client address (guesses.go).
	guesses guesses
}

// New returns the API of gw. log receives one line per action and per
// refused or bad request (never a token).
func New(gw Gateway, log zerolog.Logger) *API {
	return &API{gw: gw, log: log, now: time.Now}
}

// Gate guards one request on the admin listener. /healthz and /readyz are
// open; everything else needs a token when tokens are configured (a
// loopback client otherwise). It serves /api/ itself. It reports whether
// it answered the request; when it did not, the caller serves the path
// (/metrics, /healthz, /readyz).
func (a *API) Gate(ctx *fasthttp.RequestCtx) bool {
	path := string(ctx.Path())
	if path == "/healthz" || path == "/readyz" {
		return false
	}
	tokens := a.gw.Tokens()
	if len(tokens) > 0 {
		if wait := a.GuessWait(ctx.RemoteIP()); wait > 0 {
			a.log.Warn().Str("path", path).Stringer("client", ctx.RemoteAddr()).
				Msg("admin request refused: too many wrong tokens from this address")
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
			writeError(ctx, fasthttp.StatusTooManyRequests, "too_many_wrong_tokens",
				"too many wrong tokens from this address; try again after Retry-After seconds")
			return true
		}
	}
	p, why := authorize(ctx, tokens)
	if why == whyUnknownToken {
		a.GuessFailed(ctx.RemoteIP())
	}
	if why != "" {
		a.log.Warn().Str("path", path).Str("method", string(ctx.Method())).Stringer("client", ctx.RemoteAddr()).
			Str("reason", why).Msg("admin request refused")
		status := fasthttp.StatusUnauthorized
		if len(tokens) == 0 {
			status = fasthttp.StatusForbidden
		} else {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="easgate admin"`)
		}
		writeError(ctx, status, "unauthorized", why)
		return true
	}
	if strings.HasPrefix(path, "/api/") {
		a.serve(ctx, p)
		return true
	}
	return false
}

// apiError is an error with its HTTP status; every error the API returns
// goes through writeError in one JSON shape.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{fasthttp.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{fasthttp.StatusNotFound, "not_found", fmt.Sprintf(format, args...)}
}

// errorBody is the one error shape: {"error": {"status", "code", "message"}}.
type errorBody struct {
	Error struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	var b errorBody
	b.Error.Status, b.Error.Code, b.Error.Message = status, code, msg
	data, _ := json.Marshal(&b)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(data, '\n'))
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, "internal", err.Error())
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(data, '\n'))
}

// serve routes /api/v1.
func (a *API) serve(ctx *fasthttp.RequestCtx, p Principal) {
	err := a.route(ctx, p)
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{fasthttp.StatusInternalServerError, "internal", err.Error()}
		a.log.Error().Err(err).Str("path", string(ctx.Path())).Msg("admin API failed")
	} else {
		a.log.Info().Str("path", string(ctx.Path())).Str("method", string(ctx.Method())).Str("actor", p.Name).
			Int("status", ae.status).Str("error", ae.msg).Msg("admin API request refused")
	}
	writeError(ctx, ae.status, ae.code, ae.msg)
}

func (a *API) route(ctx *fasthttp.RequestCtx, p Principal) error {
	raw := string(ctx.URI().PathOriginal())
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	rest, ok := strings.CutPrefix(raw, "/api/v1/")
	if !ok {
		return notFound("unknown API path %q: the API is under /api/v1", raw)
	}
	parts := strings.Split(rest, "/")
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil {
			return badRequest("path segment %q: %v", s, err)
		}
		parts[i] = u
	}
	get, post := ctx.IsGet(), ctx.IsPost()
	need := RoleRead
	if post {
		need = RoleOperate
	}
	if !get && !post {
		ctx.Response.Header.Set("Allow", "GET, POST")
		return &apiError{fasthttp.StatusMethodNotAllowed, "method_not_allowed", "use GET to read and POST to act"}
	}
	if p.Role < need {
		return &apiError{fasthttp.StatusForbidden, "forbidden", fmt.Sprintf("token %q has role %s; this needs %s", p.Name, p.Role, need)}
	}
	switch {
	case len(parts) == 1 && parts[0] == "devices" && get:
		return a.listDevices(ctx)
	case len(parts) == 1 && parts[0] == "devices:bulk" && post:
		return a.bulk(ctx, p)
	case len(parts) == 3 && parts[0] == "devices" && get:
		return a.showDevice(ctx, parts[1], parts[2])
	case len(parts) == 4 && parts[0] == "devices" && post:
		return a.action(ctx, p, parts[1], parts[2], parts[3])
	case len(parts) == 1 && parts[0] == "audit" && get:
		return a.audit(ctx)
	case len(parts) == 1 && parts[0] == "report" && get:
		return a.report(ctx)
	}
	return notFound("no API endpoint %s %s", ctx.Method(), raw)
}

// DeviceView is a device as the API shows it: the inventory record, its
// override and quarantine, and a probable predecessor (device-id churn).
type DeviceView struct {
	policy.DeviceRecord
	Override   *policy.Override `json:"override,omitempty"`
	Quarantine *QuarantineInfo  `json:"quarantine,omitempty"`
	// SuccessorOf is an allowed device of the same user with the same
	// DeviceInformation that this one probably replaces (a wipe or an app
	// reinstall gives a phone a new DeviceId).
	SuccessorOf string `json:"successor_of,omitempty"`
}

// views completes records for the API; the churn check looks at the
// other devices of the records' users, found in one pass over the table.
func (a *API) views(acc *access.Access, recs []policy.DeviceRecord) []DeviceView {
	out := make([]DeviceView, 0, len(recs))
	byUser := UserDevices(acc.Devices, recs)
	for i := range recs {
		r := &recs[i]
		v := DeviceView{DeviceRecord: *r}
		if o, ok := acc.Overrides.Get(r.User, r.DeviceID); ok {
			v.Override = &o
		}
		if q, ok := a.gw.Quarantine(r.User, r.DeviceID); ok {
			v.Quarantine = &q
		}
		if prev, ok := Predecessor(acc.Overrides, r, byUser[r.User]); ok {
			v.SuccessorOf = prev.DeviceID
		}
		out = append(out, v)
	}
	return out
}

// ParseSince reads a time bound: a duration back from now ("30d", "12h",
// "90m") or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 36500 {
			return time.Time{}, fmt.Errorf("%q: want a number of days such as 30d", s)
		}
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q: want a duration (30d, 12h, 90m) or an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}

// filterFromArgs reads the list filter from query arguments.
func (a *API) filterFromArgs(acc *access.Access, args *fasthttp.Args) (policy.DeviceFilter, error) {
	f := policy.DeviceFilter{
		State: string(args.Peek("state")), Reason: string(args.Peek("reason")), Client: string(args.Peek("client")),
		OS: string(args.Peek("os")), Q: string(args.Peek("q")), User: string(args.Peek("user")),
	}
	var err error
	if f.SeenSince, err = ParseSince(string(args.Peek("seen_since")), a.now()); err != nil {
		return f, badRequest("seen_since %v", err)
	}
	return f, a.checkFilter(acc, &f)
}

// checkFilter validates f and puts its user in canonical form.
func (a *API) checkFilter(acc *access.Access, f *policy.DeviceFilter) error {
	if f.User != "" {
		c, err := acc.Engine.CanonicalUser(f.User)
		if err != nil {
			return badRequest("user %q: %v", f.User, err)
		}
		f.User = c
	}
	if err := f.Validate(); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

// pageToken encodes a list offset; it is opaque to clients.
func pageToken(off int) string {
	if off <= 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(off)))
}

func parsePageToken(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil && len(b) > 1 && b[0] == 'o' {
		if n, err := strconv.Atoi(string(b[1:])); err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, badRequest("page_token %q is not a token this API gave out", s)
}

func pageSize(args *fasthttp.Args) (int, error) {
	s := string(args.Peek("page_size"))
	if s == "" {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, badRequest("page_size %q: want a number from 1 to %d", s, MaxPageSize)
	}
	if n > MaxPageSize {
		return 0, badRequest("page_size %d is too large: at most %d (use page_token for more)", n, MaxPageSize)
	}
	return n, nil
}

// DeviceList is the answer of GET /api/v1/devices.
type DeviceList struct {
	Devices       []DeviceView `json:"devices"`
	Total         int          `json:"total"`
	NextPageToken string       `json:"next_page_token,omitempty"`
}

func (a *API) listDevices(ctx *fasthttp.RequestCtx) error {
	acc := a.gw.Access()
	args := ctx.QueryArgs()
	f, err := a.filterFromArgs(acc, args)
	if err != nil {
		return err
	}
	size, err := pageSize(args)
	if err != nil {
		return err
	}
	off, err := parsePageToken(string(args.Peek("page_token")))
	if err != nil {
		return err
	}
	format := string(args.Peek("format"))
	if format != "" && format != "json" && format != "csv" {
		return badRequest("format %q: want json or csv", format)
	}
	page, err := acc.Devices.List(&f, string(args.Peek("sort")), off, size)
	if err != nil {
		return badRequest("%v", err)
	}
	out := DeviceList{Devices: a.views(acc, page.Devices), Total: page.Total, NextPageToken: pageToken(page.Next)}
	if format == "csv" {
		ctx.SetContentType("text/csv; charset=utf-8")
		if out.NextPageToken != "" {
			ctx.Response.Header.Set("X-Next-Page-Token", out.NextPageToken)
		}
		ctx.Response.Header.Set("X-Total-Count", strconv.Itoa(out.Total))
		ctx.SetBody(DevicesCSV(out.Devices))
		return nil
	}
	writeJSON(ctx, out)
	return nil
}

// DeviceDetail is the answer of GET /api/v1/devices/{user}/{device_id}:
// the record and what the policy decides for it now, step by step (the
// same evaluation as `easgate explain`).
type DeviceDetail struct {
	Device   DeviceView    `json:"device"`
	Decision DecisionView  `json:"decision"`
	Steps    []policy.Step `json:"steps"`
}

// DecisionView is a decision in JSON.
type DecisionView struct {
	State    string   `json:"state"`
	Action   string   `json:"action"`
	Enforced bool     `json:"enforced"`
	Reasons  []string `json:"reasons"`
	Rule     string   `json:"rule,omitempty"`
}

func decisionView(d *policy.Decision) DecisionView {
	v := DecisionView{State: policy.AccessState(d), Action: d.Action.String(), Enforced: d.Enforced, Rule: d.Rule, Reasons: []string{}}
	for _, r := range d.Reasons() {
		v.Reasons = append(v.Reasons, r.String())
	}
	return v
}

// Subject rebuilds what the gateway decides on from a device's record:
// its last User-Agent, DeviceType and DeviceInformation. The record does
// not keep how the device authenticated; a certificate fingerprint means
// certificate, else basic. The client is identified with rules, the
// gateway's (identify.rules_file; nil: the embedded rules).
func Subject(r *policy.DeviceRecord, now time.Time, rules *eas.Rules) *policy.Subject {
	info := r.Info
	s := &policy.Subject{User: []byte(r.User), DeviceID: []byte(r.DeviceID), DeviceType: []byte(r.DeviceType),
		UserAgent: []byte(r.UserAgent), Info: &info, FirstSeen: r.FirstSeen, Now: now, Auth: policy.AuthBasic}
	if r.CertFingerprint != "" {
		s.Auth = policy.AuthCertificate
	}
	s.Client = rules.Identify(s.UserAgent, s.DeviceType, &info)
	return s
}

// lookupTimeout bounds a compliance lookup made by the API.
const lookupTimeout = 10 * time.Second

func (a *API) find(acc *access.Access, user, device string) (policy.DeviceRecord, error) {
	canon, err := acc.Engine.CanonicalUser(user)
	if err != nil {
		return policy.DeviceRecord{}, badRequest("user %q: %v", user, err)
	}
	if device == "" || len(device) > eas.MaxDeviceIDLen {
		return policy.DeviceRecord{}, badRequest("device id %q: want 1 to %d characters", device, eas.MaxDeviceIDLen)
	}
	rec, ok := acc.Devices.Get([]byte(canon), []byte(device))
	if !ok {
		return rec, notFound("no device %q of user %q in the inventory", device, canon)
	}
	return rec, nil
}

func (a *API) showDevice(ctx *fasthttp.RequestCtx, user, device string) error {
	acc := a.gw.Access()
	rec, err := a.find(acc, user, device)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	d, steps := acc.Engine.Explain(c, Subject(&rec, a.now(), acc.Rules))
	writeJSON(ctx, DeviceDetail{Device: a.views(acc, []policy.DeviceRecord{rec})[0], Decision: decisionView(&d), Steps: steps})
	return nil
}

// Actions an administrator can take on a device.
const (
	ActAllow      = "allow"
	ActBlock      = "block"
	ActQuarantine = "quarantine"
	ActDefault    = "default"
	ActForget     = "forget"
)

// Actions lists them.
var Actions = []string{ActAllow, ActBlock, ActQuarantine, ActDefault, ActForget}

type actionBody struct {
	Note string `json:"note"`
	// Like names a device of the same user whose approval this device
	// takes over (allow only).
	Like string `json:"like"`
}

// decodeBody reads an optional JSON body into v: empty is fine, anything
// else must be one JSON object with known fields.
func decodeBody(ctx *fasthttp.RequestCtx, v any) error {
	body := ctx.PostBody()
	if len(body) > maxBodyBytes {
		return &apiError{fasthttp.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over %d bytes", maxBodyBytes)}
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body is not the JSON object expected: %v", err)
	}
	if dec.More() {
		return badRequest("request body has data after the JSON object")
	}
	return nil
}

func (a *API) action(ctx *fasthttp.RequestCtx, p Principal, user, device, act string) error {
	var b actionBody
	if err := decodeBody(ctx, &b); err != nil {
		return err
	}
	e, err := a.Apply(p, Request{Action: act, User: user, DeviceID: device, Note: b.Note, Like: b.Like})
	if err != nil {
		return err
	}
	writeJSON(ctx, e)
	return nil
}

// Request is one admin action on one device.
type Request struct {
	Action   string
	User     string
	DeviceID string
	Note     string
	Like     string // allow only: carry over the approval of this device of the same user
	Bulk     bool
}

// describe says a device's state and override for the audit trail:
// "quarantined", "allowed (override allow)", "forgotten".
func describe(state string, o *policy.Override) string {
	if state == "" {
		state = "unknown"
	}
	if o != nil {
		return state + " (override " + o.Action + ")"
	}
	return state
}

// Apply is the one function every admin action goes through (API, bulk,
// CLI via the API). It validates the request, writes the override (or
// removes it, or forgets the device), records the audit entry, and wakes
// the device's held requests so the new decision applies to them at once:
// a blocked device's held Ping gets the block answer, an allowed
// quarantined device's held Ping is answered and its next request reaches
// Exchange. An action whose audit entry cannot be written is undone.
func (a *API) Apply(p Principal, req Request) (policy.AuditEntry, error) {
	if p.Role < RoleOperate {
		return policy.AuditEntry{}, &apiError{fasthttp.StatusForbidden, "forbidden", fmt.Sprintf("%q has role %s; actions need operate", p.Name, p.Role)}
	}
	switch req.Action {
	case ActAllow, ActBlock, ActQuarantine, ActDefault, ActForget:
	default:
		return policy.AuditEntry{}, notFound("unknown action %q: want one of %s", req.Action, strings.Join(Actions, ", "))
	}
	if len(req.Note) > maxNote {
		return policy.AuditEntry{}, badRequest("note is %d bytes; at most %d", len(req.Note), maxNote)
	}
	if req.Like != "" && req.Action != ActAllow {
		return policy.AuditEntry{}, badRequest("like applies to allow only")
	}
	a.act.Lock()
	defer a.act.Unlock()
	acc := a.gw.Access()
	rec, err := a.find(acc, req.User, req.DeviceID)
	if err != nil {
		return policy.AuditEntry{}, err
	}
	if req.Like != "" {
		prev, err := a.find(acc, rec.User, req.Like)
		if err != nil {
			return policy.AuditEntry{}, err
		}
		if !allowedDevice(acc.Overrides, &prev) {
			return policy.AuditEntry{}, &apiError{fasthttp.StatusConflict, "conflict",
				fmt.Sprintf("device %q of %q is not allowed: there is no approval to carry over", prev.DeviceID, rec.User)}
		}
		req.Like = prev.DeviceID
	}
	es, err := a.commit(acc, p, req, []policy.DeviceRecord{rec})
	if err != nil {
		return policy.AuditEntry{}, err
	}
	return es[0], nil
}

// commit carries out one action on devices (held by a.act): the
// overrides in one store write, the audit entries in another (if those
// cannot be written the overrides are put back as they were), then the
// inventory and the held requests. forget writes its entry first, since
// a forgotten record cannot be put back.
func (a *API) commit(acc *access.Access, p Principal, req Request, recs []policy.DeviceRecord) ([]policy.AuditEntry, error) {
	now := a.now().UTC()
	entries := make([]policy.AuditEntry, len(recs))
	var set, remove, restoreSet, restoreRemove []policy.Override
	for i := range recs {
		r := &recs[i]
		prev, had := acc.Overrides.Get(r.User, r.DeviceID)
		var prevPtr *policy.Override
		if had {
			prevPtr = &prev
			restoreSet = append(restoreSet, prev)
		} else {
			restoreRemove = append(restoreRemove, policy.Override{User: r.User, DeviceID: r.DeviceID})
		}
		entries[i] = policy.AuditEntry{Time: now, Actor: p.Name, Role: p.Role.String(), Action: req.Action, User: r.User,
			DeviceID: r.DeviceID, Before: describe(r.State, prevPtr), Note: req.Note, Like: req.Like, Bulk: req.Bulk}
		switch req.Action {
		case ActAllow, ActBlock, ActQuarantine:
			set = append(set, policy.Override{User: r.User, DeviceID: r.DeviceID, Action: req.Action, By: p.Name, At: now, Note: req.Note, Like: req.Like})
		default:
			remove = append(remove, policy.Override{User: r.User, DeviceID: r.DeviceID})
		}
	}
	if req.Action == ActForget {
		for i := range entries {
			entries[i].After = "forgotten"
		}
		out, err := acc.Audit.AppendAll(entries)
		if err != nil {
			return nil, err
		}
		if err := acc.Overrides.Change(nil, remove); err != nil {
			return out, err
		}
		for i := range recs {
			if err := acc.Devices.Forget(recs[i].User, recs[i].DeviceID); err != nil {
				return out, err
			}
			a.gw.Wake(recs[i].User, recs[i].DeviceID)
			a.logAction(out[i])
		}
		return out, nil
	}
	if err := acc.Overrides.Change(set, remove); err != nil {
		return nil, err
	}
	decs := make([]policy.Decision, len(recs))
	for i := range recs {
		r := &recs[i]
		c, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		decs[i] = acc.Engine.Decide(c, Subject(r, now, acc.Rules))
		cancel()
		var after *policy.Override
		if o, ok := acc.Overrides.Get(r.User, r.DeviceID); ok {
			after = &o
		}
		entries[i].After = describe(policy.AccessState(&decs[i]), after)
	}
	out, err := acc.Audit.AppendAll(entries)
	if err != nil {
		if uerr := acc.Overrides.Change(restoreSet, restoreRemove); uerr != nil {
			a.log.Error().Err(uerr).Int("devices", len(recs)).Msg("admin action: audit entries failed and the overrides could not be restored")
		}
		return nil, fmt.Errorf("audit trail not written, action undone: %w", err)
	}
	for i := range recs {
		acc.Devices.SetDecision(recs[i].User, recs[i].DeviceID, &decs[i], now)
		a.gw.Wake(recs[i].User, recs[i].DeviceID)
		a.logAction(out[i])
	}
	return out, nil
}

func (a *API) logAction(e policy.AuditEntry) {
	a.log.Info().Uint64("seq", e.Seq).Str("actor", e.Actor).Str("action", e.Action).Str("user", e.User).
		Str("device_id", e.DeviceID).Str("before", e.Before).Str("after", e.After).Str("note", e.Note).
		Str("like", e.Like).Bool("bulk", e.Bulk).Msg("admin action")
}

// BulkRequest is the body of POST /api/v1/devices:bulk.
type BulkRequest struct {
	Filter BulkFilter `json:"filter"`
	Action string     `json:"action"`
	DryRun bool       `json:"dry_run"`
	Note   string     `json:"note"`
}

// BulkFilter is a device filter in JSON; seen_since is a duration back
// from now ("30d") or an RFC 3339 time.
type BulkFilter struct {
	User      string `json:"user"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	Client    string `json:"client"`
	OS        string `json:"os"`
	SeenSince string `json:"seen_since"`
	Q         string `json:"q"`
}

// BulkResult is the answer: the devices matched and, unless dry_run, the
// audit entries of the actions taken (all or none: a bulk action is one
// store transaction for the overrides and one for the audit trail).
type BulkResult struct {
	Action  string              `json:"action"`
	DryRun  bool                `json:"dry_run"`
	Matched int                 `json:"matched"`
	Devices []BulkDevice        `json:"devices"`
	Applied []policy.AuditEntry `json:"applied,omitempty"`
}

// BulkDevice names one device a bulk action matched.
type BulkDevice struct {
	User     string `json:"user"`
	DeviceID string `json:"device_id"`
	State    string `json:"state"`
}

// maxBulk bounds the devices one bulk action touches.
const maxBulk = 100_000

func (a *API) bulk(ctx *fasthttp.RequestCtx, p Principal) error {
	var b BulkRequest
	if len(strings.TrimSpace(string(ctx.PostBody()))) == 0 {
		return badRequest(`a bulk action needs a JSON body: {"filter": {...}, "action": "...", "dry_run": true}`)
	}
	if err := decodeBody(ctx, &b); err != nil {
		return err
	}
	res, err := a.Bulk(p, b)
	if err != nil {
		return err
	}
	writeJSON(ctx, res)
	return nil
}

// Bulk applies an action to every device a filter matches (or, with
// DryRun, only lists them). An empty filter is refused: acting on every
// device takes an explicit filter such as seen_since.
func (a *API) Bulk(p Principal, b BulkRequest) (BulkResult, error) {
	switch b.Action {
	case ActAllow, ActBlock, ActQuarantine, ActDefault, ActForget:
	default:
		return BulkResult{}, badRequest("action %q: want one of %s", b.Action, strings.Join(Actions, ", "))
	}
	if b.Filter == (BulkFilter{}) {
		return BulkResult{}, badRequest("an empty filter would match every device; name at least one of user, state, reason, client, os, seen_since, q")
	}
	if !b.DryRun && p.Role < RoleOperate {
		return BulkResult{}, &apiError{fasthttp.StatusForbidden, "forbidden", fmt.Sprintf("%q has role %s; actions need operate", p.Name, p.Role)}
	}
	acc := a.gw.Access()
	f := policy.DeviceFilter{User: b.Filter.User, State: b.Filter.State, Reason: b.Filter.Reason, Client: b.Filter.Client, OS: b.Filter.OS, Q: b.Filter.Q}
	var err error
	if f.SeenSince, err = ParseSince(b.Filter.SeenSince, a.now()); err != nil {
		return BulkResult{}, badRequest("filter.seen_since %v", err)
	}
	if err := a.checkFilter(acc, &f); err != nil {
		return BulkResult{}, err
	}
	page, err := acc.Devices.List(&f, "user", 0, maxBulk)
	if err != nil {
		return BulkResult{}, badRequest("%v", err)
	}
	res := BulkResult{Action: b.Action, DryRun: b.DryRun, Matched: page.Total, Devices: []BulkDevice{}}
	for _, r := range page.Devices {
		res.Devices = append(res.Devices, BulkDevice{User: r.User, DeviceID: r.DeviceID, State: r.State})
	}
	if page.Total > maxBulk {
		return res, badRequest("the filter matches %d devices; at most %d per bulk action", page.Total, maxBulk)
	}
	if b.DryRun {
		return res, nil
	}
	if len(b.Note) > maxNote {
		return res, badRequest("note is %d bytes; at most %d", len(b.Note), maxNote)
	}
	if len(page.Devices) == 0 {
		return res, nil
	}
	a.act.Lock()
	defer a.act.Unlock()
	// The records are read again under the lock: the states before are
	// those the action changes.
	recs := make([]policy.DeviceRecord, 0, len(page.Devices))
	for _, r := range page.Devices {
		if cur, ok := acc.Devices.Get([]byte(r.User), []byte(r.DeviceID)); ok {
			recs = append(recs, cur)
		}
	}
	applied, err := a.commit(acc, p, Request{Action: b.Action, Note: b.Note, Bulk: true}, recs)
	if err != nil {
		return res, err
	}
	res.Applied = applied
	return res, nil
}

// AuditList is the answer of GET /api/v1/audit.
type AuditList struct {
	Entries []policy.AuditEntry `json:"entries"`
}

func (a *API) audit(ctx *fasthttp.RequestCtx) error {
	acc := a.gw.Access()
	args := ctx.QueryArgs()
	f := policy.AuditFilter{User: string(args.Peek("user")), DeviceID: string(args.Peek("device_id")), Actor: string(args.Peek("actor"))}
	var err error
	if f.Since, err = ParseSince(string(args.Peek("since")), a.now()); err != nil {
		return badRequest("since %v", err)
	}
	if f.User != "" {
		if f.User, err = acc.Engine.CanonicalUser(f.User); err != nil {
			return badRequest("user: %v", err)
		}
	}
	limit, err := pageSize(args)
	if err != nil {
		return err
	}
	entries, err := policy.ReadAudit(acc.Audit.Store(), acc.Audit, f, limit)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []policy.AuditEntry{}
	}
	if string(args.Peek("format")) == "csv" {
		ctx.SetContentType("text/csv; charset=utf-8")
		ctx.SetBody(AuditCSV(entries))
		return nil
	}
	writeJSON(ctx, AuditList{Entries: entries})
	return nil
}

func (a *API) report(ctx *fasthttp.RequestCtx) error {
	acc := a.gw.Access()
	args := ctx.QueryArgs()
	sinceArg := string(args.Peek("since"))
	if sinceArg == "" {
		sinceArg = "30d"
	}
	since, err := ParseSince(sinceArg, a.now())
	if err != nil {
		return badRequest("since %v", err)
	}
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep := BuildReport(c, acc.Engine, acc.Rules, acc.Devices, since, a.now())
	switch string(args.Peek("format")) {
	case "", "json":
		writeJSON(ctx, rep)
	case "csv":
		ctx.SetContentType("text/csv; charset=utf-8")
		ctx.SetBody(rep.CSV())
	default:
		return badRequest("format: want json or csv")
	}
	return nil
}
