package policy

import (
	"strconv"
	"time"

	"github.com/easgate/easgate/eas"
)

// Action is what happens to a device's request.
type Action uint8

// Actions, in increasing severity.
const (
	Allow Action = iota
	Quarantine
	Block
)

var actionNames = [...]string{Allow: "allow", Quarantine: "quarantine", Block: "block"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// ParseAction reads "allow", "block" or "quarantine".
func ParseAction(s string) (Action, bool) {
	for i, n := range actionNames {
		if n == s {
			return Action(i), true
		}
	}
	return Allow, false
}

// Mode says whether a policy or a rule is enforced or only reported.
type Mode uint8

const (
	// Enforce applies the decision.
	Enforce Mode = iota
	// Report forwards everything and records what would have happened.
	Report
)

func (m Mode) String() string {
	if m == Report {
		return "report"
	}
	return "enforce"
}

// ParseMode reads "enforce" or "report"; "" means enforce.
func ParseMode(s string) (Mode, bool) {
	switch s {
	case "", "enforce":
		return Enforce, true
	case "report":
		return Report, true
	}
	return Enforce, false
}

// Reason is one typed reason for a decision. Its String form is stable: it
// goes into access-log lines and metric labels.
type Reason uint8

// Reasons. The names follow Exchange's DeviceAccessStateReason where one
// exists (Individual, DeviceRule, Global) and easgate's compliance states.
const (
	ReasonNone                  Reason = iota
	ReasonIndividualBlock              // device id on the user's blocked list
	ReasonIndividualAllow              // device id on the user's allowed list
	ReasonDiscovery                    // no device information yet, within the discovery period
	ReasonDeviceRule                   // a device access rule matched
	ReasonDefault                      // no rule matched: the default access level
	ReasonCompliant                    // the compliance source says compliant
	ReasonGrace                        // the compliance source says in grace
	ReasonNoncompliant                 // the compliance source says non-compliant
	ReasonNotEnrolled                  // the compliance source does not know the device
	ReasonComplianceUnavailable        // no verdict could be had: on_unavailable applied
	ReasonComplianceExempt             // the user is excluded from the compliance requirement
	ReasonStaleVerdict                 // the verdict used is past its TTL (stale-if-error)
	ReasonReportOnlyRule               // a report-only rule matched (it did not decide)
	ReasonReportOnlyPolicy             // the policy runs in report mode: nothing is enforced
	ReasonUnknownUser                  // the user name has no canonical form (a domain not in auth.domains): block
	ReasonAdminAllow                   // an administrator allowed the device (admin API or easgate devices allow)
	ReasonAdminBlock                   // an administrator blocked the device
	ReasonAdminQuarantine              // an administrator quarantined the device
	reasonCount
)

var reasonNames = [...]string{
	ReasonNone:                  "none",
	ReasonIndividualBlock:       "individual-block",
	ReasonIndividualAllow:       "individual-allow",
	ReasonDiscovery:             "device-discovery",
	ReasonDeviceRule:            "device-rule",
	ReasonDefault:               "default-access",
	ReasonCompliant:             "device-compliant",
	ReasonGrace:                 "device-in-grace",
	ReasonNoncompliant:          "device-noncompliant",
	ReasonNotEnrolled:           "device-not-enrolled",
	ReasonComplianceUnavailable: "compliance-unavailable",
	ReasonComplianceExempt:      "compliance-exempt",
	ReasonStaleVerdict:          "stale-verdict",
	ReasonReportOnlyRule:        "report-only-rule",
	ReasonReportOnlyPolicy:      "report-only-policy",
	ReasonUnknownUser:           "unknown-user",
	ReasonAdminAllow:            "admin-allow",
	ReasonAdminBlock:            "admin-block",
	ReasonAdminQuarantine:       "admin-quarantine",
}

// ParseReason reads a reason's String form.
func ParseReason(s string) (Reason, bool) {
	for i, n := range reasonNames {
		if n == s {
			return Reason(i), true
		}
	}
	return ReasonNone, false
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// MaxReasons bounds the reasons one decision carries; it keeps Decision a
// fixed-size value so deciding allocates nothing.
const MaxReasons = 6

// Decision is the outcome of Decide. It is a plain value: no allocation.
type Decision struct {
	// Action is what the policy decided. When Enforced is false the proxy
	// forwards the request anyway and only records Action.
	Action Action
	// Enforced is false when the whole policy runs in report mode.
	Enforced bool
	// Rule names the device access rule that decided, if one did.
	Rule string
	// ReportedRule names the first report-only rule that matched, and
	// ReportedAction what it would have done.
	ReportedRule   string
	ReportedAction Action
	// Verdict is the compliance verdict used, if one was consulted.
	Verdict Verdict
	// VerdictAge is how old Verdict was when it was used.
	VerdictAge time.Duration
	reasons    [MaxReasons]Reason
	nreasons   uint8
}

// Reasons returns the decision's reasons, most decisive first. The slice
// aliases the Decision.
func (d *Decision) Reasons() []Reason { return d.reasons[:d.nreasons] }

// HasReason reports whether r is among the reasons.
func (d *Decision) HasReason(r Reason) bool {
	for _, x := range d.reasons[:d.nreasons] {
		if x == r {
			return true
		}
	}
	return false
}

func (d *Decision) addReason(r Reason) {
	if int(d.nreasons) < MaxReasons && !d.HasReason(r) {
		d.reasons[d.nreasons] = r
		d.nreasons++
	}
}

// AuthMethod is how the request was authenticated at the gateway.
type AuthMethod uint8

// Authentication methods.
const (
	AuthNone AuthMethod = iota
	AuthBasic
	AuthCertificate
	AuthBoth
	// AuthPassthrough is an Authorization scheme easgate forwards without
	// reading it (auth.pass_schemes: Bearer, Negotiate, NTLM).
	AuthPassthrough
)

var authNames = [...]string{AuthNone: "none", AuthBasic: "basic", AuthCertificate: "certificate", AuthBoth: "certificate+basic", AuthPassthrough: "passthrough"}

func (a AuthMethod) String() string {
	if int(a) < len(authNames) {
		return authNames[a]
	}
	return "auth(" + strconv.Itoa(int(a)) + ")"
}

// Subject is what the proxy tells the policy about one request. Byte slices
// are borrowed for the duration of Decide only.
type Subject struct {
	// User is the authenticated identity in the canonical form of
	// eas.Domains (Config.Domains): "alice@corp.example.com" with
	// auth.domains, else the name as written, case-folded. Decisions about
	// a name in another form would miss the user's lists.
	User       []byte
	DeviceID   []byte
	DeviceType []byte
	UserAgent  []byte
	Client     eas.Client
	// Info is the device information last reported (Settings or Provision);
	// nil or zero when none has been seen yet.
	Info *eas.DeviceInfo
	// FirstSeen is when easgate first saw this device; zero means now.
	FirstSeen time.Time
	// Auth is how the request was authenticated; CertIdentity is the
	// certificate identity when one was presented.
	Auth         AuthMethod
	CertIdentity []byte
	// Now is the time of the request; zero means time.Now().
	Now time.Time
}

// State is a device's compliance state as a Source reports it.
type State uint8

// Compliance states.
const (
	StateUnknown State = iota // the source does not know the device (not enrolled)
	StateCompliant
	StateNoncompliant
	StateGrace // non-compliant but within a grace period: treated as compliant
)

var stateNames = [...]string{StateUnknown: "unknown", StateCompliant: "compliant", StateNoncompliant: "noncompliant", StateGrace: "grace"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ParseState reads a state name as written in compliance files and webhook
// answers (case-sensitive lower case, as documented).
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return StateUnknown, false
}

// Verdict is a compliance verdict for one user+device.
type Verdict struct {
	State State
	// Source names where the verdict came from ("file", "http", "graph").
	Source string
	// Fetched is when the verdict was obtained from the source.
	Fetched time.Time
	// Expires, when not zero, is when the source says the verdict stops
	// being valid (a CSV expires column, a webhook ttl).
	Expires time.Time
	// Stale is set when the verdict is past its cache TTL and is used only
	// because the source is failing (stale-if-error).
	Stale bool
	// Valid is false when no verdict was consulted or none could be had.
	Valid bool
}
