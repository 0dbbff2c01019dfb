package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/easgate/easgate/eas"
)

// Config is the policy as the administrator wrote it (the proxy converts the
// config file's policy section into this). It is validated by NewEngine.
type Config struct {
	Mode            Mode
	DefaultAccess   Action
	DiscoveryPeriod time.Duration
	Groups          map[string][]string
	Users           map[string]UserLists
	Rules           []Rule
	Compliance      ComplianceConfig
	// Domains is auth.domains: user names in Users, Groups, rules and the
	// compliance lists are put in its canonical form, the form Subject.User
	// must have. nil compares names as written, case-folded.
	Domains *eas.Domains
	// Overrides, when set, are the administrators' per-device decisions
	// (admin API, `easgate devices`). The table outlives the engine: it is
	// shared by every engine of the process and changes without a reload.
	Overrides *Overrides
}

// UserLists are a user's personal exemptions, as Exchange's
// ActiveSyncAllowedDeviceIDs and ActiveSyncBlockedDeviceIDs.
type UserLists struct {
	AllowedDevices []string
	BlockedDevices []string
}

// Rule is one device access rule. All the match fields that are set must
// match (AND); within one field any listed value may match (OR).
type Rule struct {
	Name   string
	Match  Match
	Access Action
	Mode   Mode
}

// Match lists what a rule matches. Strings are exact or '*' globs, ignoring
// ASCII case, unless Regex is set.
type Match struct {
	DeviceType     []string
	DeviceModel    []string
	DeviceOS       []string
	UserAgent      []string
	Client         []string // client family slugs, e.g. "outlook-mobile"
	OSFamily       string   // "iOS", "Android", "Windows", ...
	OSVersionBelow string   // with OSFamily: matches when the OS version is known and lower
	Users          []string
	Groups         []string
	// AuthMethod, when set, matches the authentication method:
	// "certificate", "basic" or "none".
	AuthMethod []string
	Regex      bool
}

// ComplianceConfig is the compliance requirement.
type ComplianceConfig struct {
	RequireFor    []string // users, groups or "all"
	Exclude       []string // users and groups; exclusions win
	OnUnavailable Action   // when no verdict can be had in time
}

// Engine evaluates a compiled policy. It is immutable and safe for
// concurrent use; reloading the config builds a new Engine.
type Engine struct {
	mode      Mode
	def       Action
	discovery time.Duration
	users     map[string]*compiledUser // canonical user -> lists
	rules     []compiledRule
	require   *userSet
	exclude   *userSet
	onUnavail Action
	cache     *Cache
	domains   *eas.Domains
	overrides *Overrides
}

type compiledUser struct {
	name    string
	allowed map[string]struct{} // device ids, ASCII-lower-cased (deviceSet)
	blocked map[string]struct{}
}

type compiledRule struct {
	name                                      string
	access                                    Action
	mode                                      Mode
	deviceType, deviceModel, deviceOS, agents patterns
	clients                                   []eas.Family
	osFamily                                  eas.OSFamily
	hasOS                                     bool
	below                                     eas.OSVersion
	hasBelow                                  bool
	users                                     *userSet
	auth                                      []AuthMethod
}

// NewEngine compiles cfg. cache may be nil when no compliance requirement is
// configured. Every problem is reported at once.
func NewEngine(cfg Config, cache *Cache) (*Engine, error) {
	var errs []error
	e := &Engine{
		mode:      cfg.Mode,
		def:       cfg.DefaultAccess,
		discovery: cfg.DiscoveryPeriod,
		users:     map[string]*compiledUser{},
		onUnavail: cfg.Compliance.OnUnavailable,
		cache:     cache,
		domains:   cfg.Domains,
		overrides: cfg.Overrides,
	}
	expand := func(where string, list []string) []string {
		var out []string
		for _, name := range list {
			if members, ok := cfg.Groups[name]; ok {
				out = append(out, members...)
				continue
			}
			if name == "all" || strings.ContainsAny(name, "@\\*") {
				out = append(out, name)
				continue
			}
			// A bare name that is not a group is a domain-less user name.
			out = append(out, name)
		}
		_ = where
		return out
	}
	for name, lists := range cfg.Users {
		canon, err := cfg.Domains.Canonical(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy.users: %q: %w", name, err))
			continue
		}
		cu := &compiledUser{name: canon, allowed: deviceSet(lists.AllowedDevices), blocked: deviceSet(lists.BlockedDevices)}
		if prev, ok := e.users[canon]; ok {
			// Two spellings of one user: merge their lists.
			for k := range cu.allowed {
				prev.allowed[k] = struct{}{}
			}
			for k := range cu.blocked {
				prev.blocked[k] = struct{}{}
			}
			continue
		}
		e.users[canon] = cu
	}
	seen := map[string]bool{}
	for i, r := range cfg.Rules {
		cr, err := compileRule(r, expand, cfg.Domains)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy.rules[%d] (%s): %w", i, r.Name, err))
			continue
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("policy.rules[%d]: duplicate rule name %q", i, r.Name))
		}
		seen[r.Name] = true
		e.rules = append(e.rules, cr)
	}
	if len(cfg.Compliance.RequireFor) > 0 {
		var err error
		if e.require, err = newUserSet(expand("require_for", cfg.Compliance.RequireFor), cfg.Domains); err != nil {
			errs = append(errs, fmt.Errorf("policy.compliance.require_for: %w", err))
		}
		if e.exclude, err = newUserSet(expand("exclude", cfg.Compliance.Exclude), cfg.Domains); err != nil {
			errs = append(errs, fmt.Errorf("policy.compliance.exclude: %w", err))
		}
		if cache == nil {
			errs = append(errs, errors.New("policy.compliance: require_for is set but no compliance source is configured"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}

// deviceSet indexes device ids case-folded: a phone that changes the case
// of its id must not escape its user's lists.
func deviceSet(list []string) map[string]struct{} {
	m := make(map[string]struct{}, len(list))
	for _, s := range list {
		m[string(eas.AppendDeviceIDFold(nil, []byte(s)))] = struct{}{}
	}
	return m
}

func compileRule(r Rule, expand func(string, []string) []string, doms *eas.Domains) (compiledRule, error) {
	cr := compiledRule{name: r.Name, access: r.Access, mode: r.Mode}
	var err error
	m := r.Match
	if r.Name == "" {
		return cr, errors.New("a rule needs a name")
	}
	if cr.deviceType, err = compilePatterns(m.DeviceType, m.Regex); err != nil {
		return cr, fmt.Errorf("device_type: %w", err)
	}
	if cr.deviceModel, err = compilePatterns(m.DeviceModel, m.Regex); err != nil {
		return cr, fmt.Errorf("device_model: %w", err)
	}
	if cr.deviceOS, err = compilePatterns(m.DeviceOS, m.Regex); err != nil {
		return cr, fmt.Errorf("device_os: %w", err)
	}
	if cr.agents, err = compilePatterns(m.UserAgent, m.Regex); err != nil {
		return cr, fmt.Errorf("user_agent: %w", err)
	}
	for _, c := range m.Client {
		f, ok := eas.ParseFamily(c)
		if !ok {
			return cr, fmt.Errorf("client: unknown client family %q", c)
		}
		cr.clients = append(cr.clients, f)
	}
	if m.OSFamily != "" {
		f, ok := eas.ParseOSFamily(m.OSFamily)
		if !ok {
			return cr, fmt.Errorf("os_family: unknown OS family %q", m.OSFamily)
		}
		cr.osFamily, cr.hasOS = f, true
	}
	if m.OSVersionBelow != "" {
		if !cr.hasOS {
			return cr, errors.New("os_version_below needs os_family")
		}
		v, ok := eas.ParseOSVersion(m.OSVersionBelow)
		if !ok {
			return cr, fmt.Errorf("os_version_below: invalid version %q", m.OSVersionBelow)
		}
		cr.below, cr.hasBelow = v, true
	}
	if len(m.Users) > 0 || len(m.Groups) > 0 {
		if cr.users, err = newUserSet(append(expand("users", m.Users), expand("groups", m.Groups)...), doms); err != nil {
			return cr, fmt.Errorf("users: %w", err)
		}
	}
	for _, a := range m.AuthMethod {
		switch a {
		case "certificate":
			cr.auth = append(cr.auth, AuthCertificate, AuthBoth)
		case "basic":
			cr.auth = append(cr.auth, AuthBasic, AuthBoth)
		case "passthrough":
			cr.auth = append(cr.auth, AuthPassthrough)
		case "none":
			cr.auth = append(cr.auth, AuthNone)
		default:
			return cr, fmt.Errorf("auth_method: unknown method %q (want certificate, basic, passthrough or none)", a)
		}
	}
	if len(cr.deviceType)+len(cr.deviceModel)+len(cr.deviceOS)+len(cr.agents)+len(cr.clients)+len(cr.auth) == 0 &&
		!cr.hasOS && cr.users == nil {
		return cr, errors.New("a rule needs at least one match key")
	}
	return cr, nil
}

// Step is one line of an explanation: what was checked and what came of it.
type Step struct {
	Check   string `json:"check"`
	Matched bool   `json:"matched"`
	Detail  string `json:"detail"`
}

// tracer collects steps for Explain; nil in the gateway's hot path.
type tracer struct{ steps []Step }

// add records one step. Callers check t != nil first: boxing the arguments
// would otherwise allocate on the gateway's hot path.
func (t *tracer) add(check string, matched bool, format string, args ...any) {
	t.steps = append(t.steps, Step{Check: check, Matched: matched, Detail: fmt.Sprintf(format, args...)})
}

// Decide evaluates the policy for one request. On a verdict-cache hit (or
// when no compliance lookup is needed) it performs no I/O and allocates
// nothing. A compliance lookup waits at most the cache's lookup timeout.
func (e *Engine) Decide(ctx context.Context, s *Subject) Decision {
	return e.decide(ctx, s, nil)
}

// Explain runs exactly the evaluation Decide runs and also returns every
// check made, for `easgate explain`.
func (e *Engine) Explain(ctx context.Context, s *Subject) (Decision, []Step) {
	t := &tracer{}
	d := e.decide(ctx, s, t)
	return d, t.steps
}

// Mode returns the policy's mode.
func (e *Engine) Mode() Mode { return e.mode }

// Overrides returns the override table the engine consults (nil: none).
func (e *Engine) Overrides() *Overrides { return e.overrides }

func (e *Engine) decide(ctx context.Context, s *Subject, t *tracer) Decision {
	now := s.Now
	if now.IsZero() {
		now = time.Now()
	}
	d := Decision{Enforced: e.mode == Enforce}
	if !d.Enforced {
		d.addReason(ReasonReportOnlyPolicy)
	}
	// The gateway hands over the canonical user already; anyone else
	// (explain, report, tests) may hand over any spelling, which is put in
	// canonical form here so that no spelling misses the user's lists.
	var buf [eas.MaxUserLen]byte
	canon, err := e.domains.AppendCanonical(buf[:0], s.User)
	if err != nil {
		if t != nil {
			t.add("user name", false, "%q has no canonical form: %v", s.User, err)
		}
		d.Action = Block
		d.addReason(ReasonUnknownUser)
		return d
	}
	if string(canon) != string(s.User) {
		c := *s
		c.User = append([]byte(nil), canon...)
		s = &c
	}
	e.evaluate(ctx, s, now, &d, t)
	return d
}

// CanonicalUser is the form of user that Subject.User should have
// (auth.domains): what the engine's lists are keyed by.
func (e *Engine) CanonicalUser(user string) (string, error) { return e.domains.Canonical(user) }

// evaluate is the order of evaluation, after Exchange's
// DetermineDeviceAccessState (PROTOCOL.md 4.2), extended by the compliance
// requirement:
//
//  0. an administrator's override for the device (Overrides): allow (which,
//     like a personal exemption, also exempts it from compliance), block or
//     quarantine; the newest word of an administrator, so it ranks above
//     the config file's lists;
//  1. the user's blocked device ids: block;
//  2. the user's allowed device ids: allow (a personal exemption also
//     exempts the device from the compliance requirement, as the Intune
//     connector's allow did);
//  3. device discovery: rules exist, no device information has been seen and
//     the device was first seen within the discovery period: quarantine;
//  4. device access rules, first match wins; report-only rules are recorded
//     and skipped; a block or quarantine rule decides;
//  5. the compliance requirement for targeted users (exclusions win):
//     compliant or in grace allows, even over a default of block or
//     quarantine; non-compliant or not enrolled quarantines (the notice tells
//     the user how to enrol); no verdict in time applies on_unavailable;
//  6. an allow rule, else the default access level.
func (e *Engine) evaluate(ctx context.Context, s *Subject, now time.Time, d *Decision, t *tracer) {
	// 0: the administrators' overrides.
	if a, ok := e.overrides.Lookup(s.User, s.DeviceID); ok {
		if t != nil {
			o, _ := e.overrides.Get(string(s.User), string(s.DeviceID))
			t.add("admin override", true, "%s by %s at %s: %s", o.Action, o.By, o.At.Format(time.RFC3339), o.Note)
		}
		d.Action = a
		switch a {
		case Allow:
			d.addReason(ReasonAdminAllow)
		case Block:
			d.addReason(ReasonAdminBlock)
		default:
			d.addReason(ReasonAdminQuarantine)
		}
		return
	}
	if t != nil {
		t.add("admin override", false, "no override for %s of %q", s.DeviceID, s.User)
	}

	// 1 and 2: personal lists.
	if cu := e.lookupUser(s.User); cu != nil {
		var buf [eas.MaxDeviceIDLen]byte // the request path's ids fit; a longer one (explain) is folded on the heap
		dev := eas.AppendDeviceIDFold(buf[:0], s.DeviceID)
		if _, ok := cu.blocked[string(dev)]; ok {
			if t != nil {
				t.add("user blocked devices", true, "%s is on %s's blocked_devices", s.DeviceID, cu.name)
			}
			d.Action = Block
			d.addReason(ReasonIndividualBlock)
			return
		}
		if t != nil {
			t.add("user blocked devices", false, "%s is not on %s's blocked_devices", s.DeviceID, cu.name)
		}
		if _, ok := cu.allowed[string(dev)]; ok {
			if t != nil {
				t.add("user allowed devices", true, "%s is on %s's allowed_devices", s.DeviceID, cu.name)
			}
			d.Action = Allow
			d.addReason(ReasonIndividualAllow)
			return
		}
		if t != nil {
			t.add("user allowed devices", false, "%s is not on %s's allowed_devices", s.DeviceID, cu.name)
		}
	} else {
		if t != nil {
			t.add("user lists", false, "no per-user lists for %q", s.User)
		}
	}

	// 3: discovery.
	hasInfo := s.Info != nil && !s.Info.IsZero()
	if len(e.rules) > 0 && !hasInfo && e.discovery > 0 {
		first := s.FirstSeen
		if first.IsZero() {
			first = now
		}
		if now.Sub(first) < e.discovery {
			if t != nil {
				t.add("device discovery", true, "no device information yet; first seen %s ago, discovery period %s", now.Sub(first).Round(time.Second), e.discovery)
			}
			d.Action = Quarantine
			d.addReason(ReasonDiscovery)
			return
		}
		if t != nil {
			t.add("device discovery", false, "no device information, but the discovery period of %s has passed", e.discovery)
		}
	} else if len(e.rules) > 0 {
		if t != nil {
			t.add("device discovery", false, "device information has been seen")
		}
	}

	// 4: rules.
	var allowRule *compiledRule
	for i := range e.rules {
		r := &e.rules[i]
		if !r.matches(s, t) {
			continue
		}
		if r.mode == Report {
			if d.ReportedRule == "" {
				d.ReportedRule = r.name
				d.ReportedAction = r.access
				d.addReason(ReasonReportOnlyRule)
			}
			if t != nil {
				t.add("rule "+r.name, true, "report-only: would %s; evaluation continues", r.access)
			}
			continue
		}
		if r.access == Allow {
			allowRule = r
			break
		}
		d.Action = r.access
		d.Rule = r.name
		d.addReason(ReasonDeviceRule)
		return
	}

	// 5: compliance.
	if e.require != nil && e.require.contains(s.User) {
		if e.exclude.contains(s.User) {
			if t != nil {
				t.add("compliance requirement", false, "%q is excluded", s.User)
			}
			d.addReason(ReasonComplianceExempt)
		} else {
			if t != nil {
				t.add("compliance requirement", true, "%q must use a compliant device", s.User)
			}
			e.applyCompliance(ctx, s, now, d, t)
			return
		}
	} else if e.require != nil {
		if t != nil {
			t.add("compliance requirement", false, "%q is not targeted by require_for", s.User)
		}
	}

	// 6: allow rule or default.
	if allowRule != nil {
		d.Action = Allow
		d.Rule = allowRule.name
		d.addReason(ReasonDeviceRule)
		return
	}
	if t != nil {
		t.add("default access", true, "no rule decided: default_access %s", e.def)
	}
	d.Action = e.def
	d.addReason(ReasonDefault)
}

func (e *Engine) applyCompliance(ctx context.Context, s *Subject, now time.Time, d *Decision, t *tracer) {
	v, err := e.cache.Get(ctx, s, now)
	if err != nil || !v.Valid {
		d.Action = e.onUnavail
		d.addReason(ReasonComplianceUnavailable)
		if err != nil {
			if t != nil {
				t.add("compliance verdict", false, "no verdict: %v; on_unavailable %s", err, e.onUnavail)
			}
		} else {
			if t != nil {
				t.add("compliance verdict", false, "no verdict; on_unavailable %s", e.onUnavail)
			}
		}
		return
	}
	d.Verdict = v
	d.VerdictAge = now.Sub(v.Fetched)
	if v.Stale {
		d.addReason(ReasonStaleVerdict)
	}
	switch v.State {
	case StateCompliant:
		d.Action = Allow
		d.addReason(ReasonCompliant)
	case StateGrace:
		d.Action = Allow
		d.addReason(ReasonGrace)
	case StateNoncompliant:
		d.Action = Quarantine
		d.addReason(ReasonNoncompliant)
	default:
		d.Action = Quarantine
		d.addReason(ReasonNotEnrolled)
	}
	if t != nil {
		t.add("compliance verdict", true, "%s from %s, %s old: %s", v.State, v.Source, d.VerdictAge.Round(time.Second), d.Action)
	}
}

func (e *Engine) lookupUser(user []byte) *compiledUser {
	if len(e.users) == 0 {
		return nil
	}
	return e.users[string(user)]
}

func (r *compiledRule) matches(s *Subject, t *tracer) bool {
	// Failure details are formatted only when explaining: the gateway's
	// hot path (t == nil) must not allocate.
	if len(r.deviceType) > 0 && !r.deviceType.match(s.DeviceType) {
		if t != nil {
			r.fail(t, "device_type %q", s.DeviceType)
		}
		return false
	}
	if len(r.deviceModel) > 0 && (s.Info == nil || !r.deviceModel.matchString(s.Info.Model)) {
		if t != nil {
			r.fail(t, "device_model %s", infoField(t, s.Info, func(i *eas.DeviceInfo) string { return i.Model }))
		}
		return false
	}
	if len(r.deviceOS) > 0 && (s.Info == nil || !r.deviceOS.matchString(s.Info.OS)) {
		if t != nil {
			r.fail(t, "device_os %s", infoField(t, s.Info, func(i *eas.DeviceInfo) string { return i.OS }))
		}
		return false
	}
	if len(r.agents) > 0 && !r.agents.match(s.UserAgent) {
		if t != nil {
			r.fail(t, "user_agent %q", s.UserAgent)
		}
		return false
	}
	if len(r.clients) > 0 && !containsFamily(r.clients, s.Client.Family) {
		if t != nil {
			r.fail(t, "client %s", s.Client.Family.Slug())
		}
		return false
	}
	if r.hasOS {
		if s.Client.OS != r.osFamily {
			if t != nil {
				r.fail(t, "os_family %s", s.Client.OS)
			}
			return false
		}
		// An unknown version never matches "below": a rule must not block
		// on a guess. Discovery or the default catches those devices.
		if r.hasBelow && !versionBelow(s.Client.OSVersion, r.below) {
			if t != nil {
				r.fail(t, "os version %s (below %s)", s.Client.OSVersion, r.below)
			}
			return false
		}
	}
	if r.users != nil && !r.users.contains(s.User) {
		if t != nil {
			r.fail(t, "user %q", s.User)
		}
		return false
	}
	if len(r.auth) > 0 && !containsAuth(r.auth, s.Auth) {
		if t != nil {
			r.fail(t, "auth method %s", s.Auth)
		}
		return false
	}
	if t != nil {
		t.add("rule "+r.name, true, "matched: access %s", r.access)
	}
	return true
}

func (r *compiledRule) fail(t *tracer, format string, args ...any) bool {
	if t != nil {
		if t != nil {
			t.add("rule "+r.name, false, format+" does not match", args...)
		}
	}
	return false
}

// versionBelow reports whether v is known to be lower than below. A version
// known only by its major number (an iOS build missing from the table) is
// below only when its major is.
func versionBelow(v, below eas.OSVersion) bool {
	if !v.Known {
		return false
	}
	if v.Approx {
		return v.Major < below.Major
	}
	return v.Less(below)
}

func containsFamily(list []eas.Family, f eas.Family) bool {
	for _, x := range list {
		if x == f {
			return true
		}
	}
	return false
}

func containsAuth(list []AuthMethod, a AuthMethod) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func infoField(t *tracer, info *eas.DeviceInfo, f func(*eas.DeviceInfo) string) string {
	if t == nil {
		return ""
	}
	if info == nil {
		return `"" (no device information)`
	}
	return fmt.Sprintf("%q", f(info))
}
