package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/admin"
	"github.com/easgate/easgate/proxy/admin/console"
	"github.com/easgate/easgate/proxy/config"
	"github.com/easgate/easgate/proxy/quarantine"
)

// Enforcement: the access policy in the request pipeline (issue 4 item 6).
//
// Per configuration (state) there is an enforcement: the access.Access
// (policy engine, verdict cache, device table, store), the notice template
// and the admin webhook. For the whole process there is one enforcer: the
// quarantine emulator (its records outlive reloads and restarts), the
// registry of held requests per device, and the decision metrics.
//
// The pipeline calls (*state).decide for every parsed EAS request: it
// touches the device table, captures DeviceInformation from Settings and
// Provision bodies, builds a policy.Subject and asks the engine. Then
// (*Server).enforce acts: Allow forwards (and ends a quarantine), Block
// answers as Exchange does for the protocol version, Quarantine runs the
// emulation in proxy/quarantine. In report mode everything is forwarded.

// enforcement is the access-control part of one state.
type enforcement struct {
	acc      *access.Access
	notice   *quarantine.Notice
	notifier *quarantine.Notifier // nil without policy.quarantine.admin_webhook
	// watchHeld is false when no decision of this config can ever be
	// anything but Allow (report mode, or no rule, list, default or
	// compliance requirement that refuses): forwarded long polls then need
	// no watching.
	watchHeld bool
	// tokens are the admin API tokens (admin.tokens, admin.token_file).
	tokens []admin.Token
	// digest is admin.digest with its files read (nil: off).
	digest *admin.DigestSettings
}

// enforcer is the process-wide part.
type enforcer struct {
	log       zerolog.Logger
	quar      *quarantine.Emulator
	api       *admin.API    // the admin API (adminapi.go)
	digest    *admin.Digest // the admin mail digest; its events outlive reloads
	decisions *prometheus.CounterVec
	entered   *prometheus.CounterVec
	quarGauge prometheus.GaugeFunc

	// decisionsBy are the series of decisions, resolved once (metrics.go).
	decisionsBy decisionSeries

	// console is the web console on the admin listener (console.go).
	console *console.Console

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// sourceClient, when set, is the HTTP client of the http and graph
// compliance sources (tests point them at local TLS fakes); nil in
// production.
var sourceClient *http.Client

func newEnforcement(cfg *config.Config, log zerolog.Logger, prev *enforcement, gm access.GuardMetrics) (*enforcement, error) {
	// Everything that can fail comes before access.Build, which takes the
	// device table and the compliance source over from prev.
	tokens, err := admin.LoadTokens(&cfg.Admin)
	if err != nil {
		return nil, err
	}
	digest, err := admin.LoadDigest(&cfg.Admin.Digest)
	if err != nil {
		return nil, err
	}
	q := cfg.Policy.Quarantine
	notice, err := quarantine.LoadNotice(quarantine.NoticeConfig{From: q.Notice.From, Subject: q.Notice.Subject,
		Template: q.Notice.Template, EnrollURL: q.Notice.EnrollURL})
	if err != nil {
		return nil, err
	}
	opts := access.Options{HTTPClient: sourceClient, GuardMetrics: gm}
	if prev != nil {
		opts.Prev = prev.acc
	}
	acc, err := access.Build(cfg, log, opts)
	if err != nil {
		return nil, err
	}
	e := &enforcement{acc: acc, notice: notice, tokens: tokens, digest: digest}
	p := &cfg.Policy
	// With an admin listener an administrator can block or quarantine any
	// device at any time (admin overrides): its held long polls must be
	// watched so that the block answers them at once.
	e.watchHeld = p.Mode != config.ModeReport && (len(p.Rules) > 0 || len(p.Users) > 0 ||
		(p.DefaultAccess != "" && p.DefaultAccess != config.AccessAllow) || p.Compliance.Source.Type != "" ||
		cfg.Admin.Address != "")
	if q.AdminWebhook != "" {
		// NewNotifier fails only for an empty URL.
		e.notifier, _ = quarantine.NewNotifier(quarantine.NotifierConfig{URL: q.AdminWebhook, Timeout: 10 * time.Second,
			OnError: func(ev quarantine.Event, err error) {
				log.Warn().Err(err).Str("event", ev.Event).Str("user", ev.User).Str("device_id", ev.DeviceID).Msg("admin webhook failed")
			}})
	}
	return e, nil
}

func (e *enforcement) close() {
	if e == nil {
		return
	}
	if e.notifier != nil {
		e.notifier.Close()
	}
	_ = e.acc.Close()
}

// newEnforcer builds the process-wide enforcer. Its quarantine records
// live in st; canon (auth.domains, which a reload cannot change) moves
// records stored under an older user spelling to the canonical one.
func newEnforcer(log zerolog.Logger, reg *prometheus.Registry, st policy.Store, canon func(string) (string, error)) (*enforcer, error) {
	q, err := quarantine.New(quarantine.Options{Store: st})
	if err != nil {
		return nil, err
	}
	if err := q.LoadCanonical(canon); err != nil {
		log.Warn().Err(err).Msg("state store: some quarantine records were skipped")
	}
	en := &enforcer{log: log, quar: q, stop: make(chan struct{})}
	en.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_policy_decisions_total",
		Help: "Policy decisions for EAS requests, by action, first reason and mode (enforce, report).",
	}, []string{"action", "reason", "mode"})
	en.entered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_device_state_changes_total",
		Help: "Devices entering a policy action (allow, quarantine, block), by mode.",
	}, []string{"action", "mode"})
	en.quarGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "easgate_quarantined_devices",
		Help: "Devices with an emulated quarantine in progress.",
	}, func() float64 { return float64(q.Len()) })
	reg.MustRegister(en.decisions, en.entered, en.quarGauge)
	en.wg.Add(1)
	go en.flushLoop()
	return en, nil
}

// flushLoop persists quarantine records about once a second.
func (en *enforcer) flushLoop() {
	defer en.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-en.stop:
			if err := en.quar.Flush(); err != nil {
				en.log.Warn().Err(err).Msg("state store: quarantine flush failed")
			}
			return
		case <-t.C:
			if err := en.quar.Flush(); err != nil {
				en.log.Warn().Err(err).Msg("state store: quarantine flush failed; will retry")
			}
		}
	}
}

func (en *enforcer) close() {
	en.once.Do(func() { close(en.stop) })
	en.wg.Wait()
	if en.digest != nil {
		en.digest.Close()
	}
}

// decide applies the access policy to the inspected request: it records the
// device (TouchVisit; DeviceInformation from a Settings or Provision body),
// asks the policy engine and records the outcome in the inventory
// (ObserveVisit). It allocates nothing for a device already known
// whose verdict is cached.
func (st *state) decide(x *exchange, r *eas.Request, info *eas.DeviceInfo) policy.Decision {
	e := st.enf
	if e == nil || r.Command == eas.CmdOptions || len(r.DeviceID) == 0 {
		x.identify(r, info)
		return policy.Decision{Action: policy.Allow}
	}
	now := x.start
	user := x.field(x.user) // the canonical authenticated identity (authn.go)
	// One lookup of the device's record per request: the Visit lets
	// Observe below skip its own when nothing changed in between.
	var v policy.Visit
	e.acc.Devices.TouchVisit(&v, user, r.DeviceID, r.DeviceType, r.UserAgent, now)
	rec := &v.Record
	if info != nil && !info.IsZero() && rec.Info != *info {
		captured := *info
		e.acc.Devices.UpdateVisit(&v, user, r.DeviceID, now, func(d *policy.DeviceRecord) { d.Info = captured })
	}
	// The record is copied into the (pooled) scratch so that pointing the
	// Subject at it does not move a local to the heap.
	sc := x.scratch()
	sc.info, sc.lastAction = rec.Info, rec.LastAction
	if info == nil && !sc.info.IsZero() {
		info = &sc.info // the DeviceInformation the device sent before
	}
	x.identify(r, info)
	subj := policy.Subject{User: user, DeviceID: r.DeviceID, DeviceType: r.DeviceType, UserAgent: r.UserAgent,
		Client: x.client, Info: &sc.info, FirstSeen: rec.FirstSeen, Auth: x.authMethodOf(r), CertIdentity: x.certIdentity(), Now: now} // authn.go: Auth, CertIdentity
	d := e.acc.Engine.Decide(context.Background(), &subj)
	// The inventory (policy/inventory.go): a comparison with the Visit's
	// copy, and a write only when the device's command, address, client or
	// decision changed.
	e.acc.Devices.ObserveVisit(&v, user, r.DeviceID, &d, &x.client,
		policy.Observation{Command: r.Command, Version: r.Version, Addr: remoteAddr(x.remote), Now: now})
	return d
}

// remoteAddr is the phone's (or its load balancer's) IP address.
func remoteAddr(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

func authMethod(r *eas.Request) policy.AuthMethod {
	if len(r.AuthUser) > 0 {
		return policy.AuthBasic
	}
	return policy.AuthNone
}

// exEnforce is the enforcement part of an exchange (pooled with it).
// The device's last action and DeviceInformation, which only the decision
// needs, are in the exchange's scratch (scratch.go).
type exEnforce struct {
	decided    bool   // the policy was consulted
	learnInbox bool   // a quarantined device's FolderSync: read the CAS's answer
	taken      string // what easgate did: allow, block, quarantine
	// early is the answer given to a long poll whose device was blocked or
	// quarantined while the CAS held it (errAnsweredEarly).
	early quarantine.Answer
}

// enforce acts on the decision x.dec made for r. It reports done=true when
// easgate answered the request itself (complete as for inspect).
func (s *Server) enforce(ctx *fasthttp.RequestCtx, x *exchange, r *eas.Request) (done, complete bool) {
	st, en := x.st, s.enf
	e := st.enf
	if e == nil || en == nil || r.Command == eas.CmdOptions || len(r.DeviceID) == 0 {
		return false, false
	}
	d := &x.dec
	x.en.decided = true
	mode := "enforce"
	if !d.Enforced {
		mode = "report"
	}
	en.decisionsBy.count(en.decisions, d)
	user := x.field(x.user) // the canonical authenticated identity (authn.go)
	if d.Action.String() != x.scratch().lastAction {
		s.transition(x, r, mode)
	}
	if !d.Enforced || d.Action == policy.Allow {
		x.en.taken = "allow"
		if en.quar.Active(user, r.DeviceID) {
			en.quar.Release(user, r.DeviceID)
			s.log.Info().Bytes("user", user).Bytes("device_id", r.DeviceID).Str("mode", mode).
				Msg("device released from quarantine: its next Sync reaches Exchange and starts over")
		}
		return false, false
	}
	if d.Action == policy.Block {
		x.en.taken, x.hold = "block", 0
		return true, x.sendAnswer(ctx, quarantine.Block(r.Command, r.Version))
	}
	x.en.taken = "quarantine"
	body, ok := policyBody(ctx, st.maxPolicyBody)
	if !ok {
		switch r.Command {
		case eas.CmdSync, eas.CmdPing, eas.CmdGetItemEstimate:
			// Too big to read (a Sync carrying large drafts): nothing of it
			// may be acknowledged.
			x.hold = 0
			return true, x.sendAnswer(ctx, quarantine.Deny(r.Command, r.Version))
		}
		body = nil
	}
	dev := quarantine.Device{User: string(user), DeviceID: string(r.DeviceID), DeviceType: string(r.DeviceType),
		Model: x.scratch().info.Model, Client: x.client.Family.String(), OS: osString(&x.client)}
	if !en.quar.Active(user, r.DeviceID) {
		if _, entered, err := en.quar.Enter(dev, reasonText(d)); err != nil {
			s.log.Warn().Err(err).Msg("quarantine notice template failed; the built-in notice is used")
		} else if entered {
			s.log.Debug().Bytes("user", user).Bytes("device_id", r.DeviceID).Msg("quarantine emulation started")
		}
	}
	a := en.quar.Answer(dev, quarantine.Request{Command: r.Command, Version: r.Version, Body: body})
	switch {
	case a.Forward:
		x.en.learnInbox = r.Command == eas.CmdFolderSync
		return false, false
	case a.Hold > 0:
		return true, s.holdQuarantined(ctx, x, a, r.UserAgent)
	}
	x.hold = 0 // answered at once
	return true, x.sendAnswer(ctx, a)
}

func osString(c *eas.Client) string {
	s := c.OS.String()
	if c.OSVersion.Known {
		s += " " + c.OSVersion.String()
	}
	return s
}

// reasonText says in words why a device is quarantined, for the notice.
func reasonText(d *policy.Decision) string {
	for _, r := range d.Reasons() {
		switch r {
		case policy.ReasonNotEnrolled:
			return "it is not enrolled in device management"
		case policy.ReasonNoncompliant:
			return "it does not meet the organisation's compliance policy"
		case policy.ReasonComplianceUnavailable:
			return "its compliance status cannot be checked right now"
		case policy.ReasonDiscovery:
			return "it is new and is being identified"
		case policy.ReasonDeviceRule:
			return "the device access rule " + d.Rule + " applies to it"
		case policy.ReasonIndividualBlock:
			return "it is on your blocked devices list"
		case policy.ReasonAdminQuarantine:
			return "an administrator has put it on hold"
		case policy.ReasonDefault:
			return "new devices need an administrator's approval"
		}
	}
	return "it is waiting for approval"
}

// transition records a device's new action: the device table's LastAction,
// a structured log event and, for quarantine and block, the admin webhook;
// requests the device has held re-decide.
func (s *Server) transition(x *exchange, r *eas.Request, mode string) {
	st, en := x.st, s.enf
	d := &x.dec
	action := d.Action.String()
	user := x.field(x.user) // the canonical authenticated identity (authn.go)
	st.enf.acc.Devices.Update(user, r.DeviceID, time.Now(), func(rec *policy.DeviceRecord) { rec.LastAction = action })
	en.entered.WithLabelValues(action, mode).Inc()
	s.registry.Wake(user, r.DeviceID)
	if d.Action == policy.Allow {
		return
	}
	s.announce(st, d, mode, x.scratch().lastAction, quarantine.Event{User: string(user), DeviceID: string(r.DeviceID),
		DeviceType: string(r.DeviceType), Model: x.scratch().info.Model, OS: osString(&x.client), Client: x.client.Family.String(),
		UserAgent: string(r.UserAgent)})
}

// heldTransition gives the notice of a device whose held request was just
// refused by a re-decision (a reload, a compliance change, the sweep): the
// request is answered now, so the device_block or device_quarantine event
// and the admin webhook go out now too, not at the device's next request.
// It runs outside the held registry's checks (it must not wake them).
func (s *Server) heldTransition(x *exchange, userAgent []byte) {
	st, en := s.cur.Load(), s.enf
	if st == nil || st.enf == nil || en == nil {
		return
	}
	d := &x.dec
	action := d.Action.String()
	mode := "enforce"
	if !d.Enforced {
		mode = "report"
	}
	user, device := x.field(x.user), x.field(x.device)
	var prev string
	rec := st.enf.acc.Devices.Update(user, device, time.Now(), func(rec *policy.DeviceRecord) {
		prev, rec.LastAction = rec.LastAction, action
	})
	if prev == action {
		return
	}
	en.entered.WithLabelValues(action, mode).Inc()
	if d.Action == policy.Allow {
		return
	}
	s.announce(st, d, mode, prev, quarantine.Event{User: string(user), DeviceID: string(device),
		DeviceType: string(x.field(x.devTyp)), Model: rec.Info.Model, OS: osString(&x.client), Client: x.client.Family.String(),
		UserAgent: string(userAgent)})
}

// announce logs a device's entry into quarantine or block (the admin
// notice) and, when enforced, posts it to the admin webhook. ev carries the
// device; announce fills in the decision.
func (s *Server) announce(st *state, d *policy.Decision, mode, previous string, ev quarantine.Event) {
	action := d.Action.String()
	reasons := make([]string, 0, len(d.Reasons()))
	for _, rs := range d.Reasons() {
		reasons = append(reasons, rs.String())
	}
	ev.Event, ev.Time, ev.Reasons, ev.Rule, ev.Enforced = action, time.Now().UTC(), reasons, d.Rule, d.Enforced
	s.log.Warn().Str("event", "device_"+action).Str("mode", mode).Str("user", ev.User).Str("device_id", ev.DeviceID).
		Str("device_type", ev.DeviceType).Str("model", ev.Model).Str("os", ev.OS).Str("client", ev.Client).
		Str("user_agent", ev.UserAgent).Strs("reasons", reasons).Str("rule", d.Rule).Str("previous", previous).
		Msg("device " + action + " (admin notice)")
	if d.Enforced && st.enf.notifier != nil {
		st.enf.notifier.Notify(ev)
	}
	if en := s.enf; d.Enforced && en != nil && en.digest != nil {
		en.digest.Add(admin.DigestEvent{Time: ev.Time, Event: action, User: ev.User, DeviceID: ev.DeviceID, DeviceType: ev.DeviceType,
			Model: ev.Model, OS: ev.OS, Client: ev.Client, Reasons: reasons, Rule: d.Rule})
	}
}

// sendAnswer writes easgate's own answer.
func (x *exchange) sendAnswer(ctx *fasthttp.RequestCtx, a quarantine.Answer) bool {
	return x.writeAnswer(&ctx.Response, a)
}

// writeAnswer puts easgate's own answer into out (the RequestCtx's response,
// or the response a hijacked long poll writes itself).
func (x *exchange) writeAnswer(out *fasthttp.Response, a quarantine.Answer) bool {
	out.SetStatusCode(a.HTTPStatus)
	out.Header.SetNoDefaultContentType(true)
	if len(a.Body) > 0 {
		out.Header.SetContentType(quarantine.ContentTypeWBXML)
		out.SetBodyRaw(a.Body)
	}
	x.status, x.reason, x.bytesOut = a.HTTPStatus, a.Outcome, int64(len(a.Body))
	return true
}

// holdQuarantined holds a quarantined device's Ping or Sync for its
// interval, as Exchange would, then answers a.Body. It answers at once when
// the device's decision changes (released: a.ReleaseBody; blocked: the
// block answer), when the configuration is replaced and when the server
// stops (a.Body: "no changes", so the phone asks again at once). The hold is
// a quarHold (quarhold.go): on a hijacked connection it costs no goroutine,
// like a long poll held at a CAS.
func (s *Server) holdQuarantined(ctx *fasthttp.RequestCtx, x *exchange, a quarantine.Answer, userAgent []byte) bool {
	st := x.st
	if n := s.held.Add(1); st.maxHeld > 0 && n > st.maxHeld {
		s.held.Add(-1)
		return x.answer(ctx, fasthttp.StatusServiceUnavailable, "too_many_long_polls")
	}
	s.metrics.held.Inc()
	x.hold = int(a.Hold / time.Second)
	q := &quarHold{s: s, x: x, a: a, ua: append([]byte(nil), userAgent...)}
	if canHijack(ctx) {
		q.h = &heldPoll{s: s, x: x, phoneClose: ctx.Request.Header.ConnectionClose(), quar: q}
		return s.hijack(ctx, q.h)
	}
	return q.waitInHandler(ctx) // HTTP/1.0 or a streamed body: the handler waits
}

// redecide runs the policy again for a held request's device, with the
// newest configuration.
func (s *Server) redecide(x *exchange, userAgent []byte) policy.Decision {
	e := x.st.enf
	if cur := s.cur.Load(); cur != nil && cur.enf != nil {
		e = cur.enf
	}
	user, device := x.field(x.user), x.field(x.device)
	rec, _ := e.acc.Devices.Get(user, device)
	subj := policy.Subject{User: user, DeviceID: device, DeviceType: x.field(x.devTyp), UserAgent: userAgent,
		Client: x.client, Info: &rec.Info, FirstSeen: rec.FirstSeen, Now: time.Now()}
	return e.acc.Engine.Decide(context.Background(), &subj)
}

// learnFolderSync reads the CAS's answer to a quarantined device's
// FolderSync (at most limits.max_policy_body, gunzipped when compressed) to
// learn the Inbox, and returns a reader that still yields the whole answer.
func (s *Server) learnFolderSync(x *exchange, resp *fasthttp.Response, r io.Reader) io.Reader {
	if resp.StatusCode() != fasthttp.StatusOK || r == nil {
		return r
	}
	limit := x.st.maxPolicyBody
	buf, err := io.ReadAll(io.LimitReader(r, limit+1))
	rest := io.MultiReader(bytes.NewReader(buf), r)
	if err != nil || int64(len(buf)) > limit {
		return rest
	}
	s.learnFolderSyncBody(x, resp, buf)
	return rest
}

// learnFolderSyncBody is learnFolderSync for an answer read whole.
func (s *Server) learnFolderSyncBody(x *exchange, resp *fasthttp.Response, buf []byte) {
	if resp.StatusCode() != fasthttp.StatusOK {
		return
	}
	body := buf
	var err error
	if bytes.EqualFold(resp.Header.ContentEncoding(), []byte("gzip")) {
		if body, err = fasthttp.AppendGunzipBytes(nil, buf); err != nil {
			return
		}
	}
	known, err := s.enf.quar.LearnFolderSync(x.field(x.user), x.field(x.device), body)
	if err != nil {
		s.log.Debug().Err(err).Msg("quarantine: FolderSync answer not understood")
	} else if !known {
		s.log.Debug().Bytes("device_id", x.field(x.device)).Msg("quarantine: no Inbox in the FolderSync answer")
	}
}

// decisionLabel is the metrics label of what easgate did with the request:
// allow, block, quarantine, or none (answered before any decision).
func (x *exchange) decisionLabel() string {
	if x.en.taken != "" {
		return x.en.taken
	}
	if refusal(x.reason) {
		return "none"
	}
	return "allow"
}

// logPolicy adds the decision to an access-log line: what easgate did
// (decision, set by the caller), what the policy said (policy_action,
// enforced), reasons, rule, and the verdict used (state, source, age).
func (x *exchange) logPolicy(b []byte) []byte {
	if !x.en.decided {
		return b
	}
	d := &x.dec
	b = appendStr(b, "policy_action", d.Action.String())
	b = appendBool(b, "enforced", d.Enforced)
	b = appendKey(b, "reasons")
	b = append(b, '[')
	for i, r := range d.Reasons() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, r.String())
	}
	b = append(b, ']')
	if d.Rule != "" {
		b = appendStr(b, "rule", d.Rule)
	}
	if d.ReportedRule != "" {
		b = appendStr(b, "reported_rule", d.ReportedRule)
		b = appendStr(b, "reported_action", d.ReportedAction.String())
	}
	if v := &d.Verdict; v.Valid {
		b = appendStr(b, "verdict_state", v.State.String())
		b = appendStr(b, "verdict_source", v.Source)
		b = appendDecimal(b, "verdict_age_s", d.VerdictAge.Nanoseconds(), 9)
		b = appendBool(b, "verdict_stale", v.Stale)
	}
	return b
}

// enforcementPart is the access policy as a per-configuration part
// (parts.go).
type enforcementPart struct{}

// build makes st's enforcement. access.Build takes over the running
// state's device table and store, and its compliance source and verdict
// cache when their settings did not change (access.Options.Prev): it is
// the last step of a reload that may fail.
func (enforcementPart) build(s *Server, st, prev *state) error {
	var pe *enforcement
	if prev != nil {
		pe = prev.enf
	}
	e, err := newEnforcement(st.cfg, s.log, pe, s.metrics)
	if err != nil {
		return err
	}
	st.enf = e
	return nil
}

// attach starts st's enforcement: the quarantine notice and the digest
// settings are the new ones from now on, and its device table flushes. At
// start it creates the process-wide enforcer, whose quarantine records live
// in the same store as the device table.
func (enforcementPart) attach(s *Server, st, _ *state) error {
	e := st.enf
	if s.enf == nil {
		doms, err := access.Domains(&st.cfg.Auth)
		if err != nil {
			return err
		}
		en, err := newEnforcer(s.log, s.metrics.reg, e.acc.Store, doms.Canonical)
		if err != nil {
			return err
		}
		en.api = admin.New(adminGateway{s}, s.log)
		en.console = console.New(en.api, consoleGateway{adminGateway{s}}, s.log)
		en.digest = admin.NewDigest(s.log)
		s.enf = en
	}
	s.enf.quar.SetNotice(e.notice)
	s.enf.digest.Configure(e.digest)
	e.acc.Run()
	return nil
}

// swapped runs after a reload made st current: every held request
// re-decides under the new configuration, so a device the new rules block
// gets the block answer at once; quarantine holds of the old one answer
// "no changes", so that the phone asks again under the new one.
func (enforcementPart) swapped(s *Server, _ *state) {
	s.registry.WakeAll()
}

// retire closes a drained state's enforcement: the new state took over the
// device table.
func (enforcementPart) retire(st *state) {
	st.enf.close()
}

// close flushes and stops everything at shutdown.
func (enforcementPart) close(s *Server, st *state) {
	if s.enf != nil {
		s.enf.close()
	}
	st.enf.close()
}
