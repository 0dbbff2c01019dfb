package bench

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// NewHTTPClient returns the fasthttp client devices share: many
// connections per host (each held Ping occupies one), streamed response
// bodies, no read timeout (every request carries its own deadline).
func NewHTTPClient(tlsConfig *tls.Config) *fasthttp.Client {
	return &fasthttp.Client{
		Name:                          "",
		NoDefaultUserAgentHeader:      true,
		TLSConfig:                     tlsConfig,
		MaxConnsPerHost:               1 << 20,
		MaxIdleConnDuration:           2 * time.Minute,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
		StreamResponseBody:            true,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		MaxResponseBodySize:           0,
	}
}

// Sample is one HTTP exchange a device made.
type Sample struct {
	Command  string
	Start    time.Time
	Duration time.Duration
	Status   int    // HTTP status (0 when there was no response)
	Kind     string // "" for success, else an error kind (see ErrorKind)
	BytesIn  int64  // response body bytes
	BytesOut int64  // request body bytes
	LongPoll bool   // a held Ping (its duration is the hold, not latency)
	Canceled bool   // cut by the end of the run: neither success nor error
}

// ProtocolError is an answer a real client would not accept: an
// unexpected HTTP or EAS status, or a body that is not the WBXML it should
// be.
type ProtocolError struct {
	Command string
	Msg     string
	Status  int // the EAS status, when the error is an unexpected status
	// recorded is set once the error was counted in a Sample.
	recorded bool
}

func (e *ProtocolError) Error() string { return "protocol: " + e.Command + ": " + e.Msg }

// statusError is an unexpected EAS status. The access-control statuses
// (126 user disabled, 129 device blocked, 130 access denied, 131 account
// disabled, 141 legacy device on strict policy, 177 too many devices) are a
// gateway or Exchange decision, not a protocol fault: ErrorKind reports 130
// (the per-command denial a quarantined device gets) as "denied" and the
// others as "blocked", and reports count them as policy answers, not errors.
func statusError(cmd, what string, st int) *ProtocolError {
	return &ProtocolError{Command: cmd, Msg: fmt.Sprintf("%s %d", what, st), Status: st}
}

func isAccessStatus(st int) bool {
	switch st {
	case 126, 129, 130, 131, 141, 177:
		return true
	}
	return false
}

// HTTPError is a non-2xx answer that is not a protocol violation by
// itself (503 with Retry-After, 401, 5xx).
type HTTPError struct {
	Command    string
	Status     int
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s: HTTP %d", e.Command, e.Status)
}

// Kinds of answer that are the gateway's (or Exchange's) access decision,
// not a fault: reports count them apart from errors.
const (
	KindBlocked = "blocked" // Status 129 and the other access statuses but 130
	KindDenied  = "denied"  // Status 130: a quarantined device's per-command denial
)

// statusAccessDenied is EAS Status 130 (AccessDenied).
const statusAccessDenied = 130

// IsPolicyAnswer reports whether an ErrorKind is an access decision
// (blocked or denied) rather than an error.
func IsPolicyAnswer(kind string) bool { return kind == KindBlocked || kind == KindDenied }

// ErrorKind classifies err for reports: "protocol" (unexpected status, bad
// WBXML), "blocked" (an EAS access-denial status such as 129), "denied"
// (Status 130, a quarantined device's per-command denial), "http_503"
// and other "http_NNN" codes, "timeout", "reset", "connect", "io".
func ErrorKind(err error) string {
	var pe *ProtocolError
	var he *HTTPError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		if pe.Status == statusAccessDenied {
			return KindDenied
		}
		if isAccessStatus(pe.Status) {
			return KindBlocked
		}
		return "protocol"
	case errors.As(err, &he):
		return "http_" + strconv.Itoa(he.Status)
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrNoFreeConns):
		return "connect"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "io"
}

// DeviceConfig configures one simulated device.
type DeviceConfig struct {
	Target   string // base URL, e.g. "https://127.0.0.1:8443"
	User     string
	Password string
	DeviceID string
	Profile  Profile
	Client   *fasthttp.Client
	// Timeout bounds ordinary requests (default 60s).
	Timeout time.Duration
	// TimeScale is the server's time scale: a Ping of heartbeat H is
	// expected back after H/TimeScale (default 1).
	TimeScale float64
	// Record receives every exchange (may be nil). It must be safe for
	// concurrent use when devices share it.
	Record func(Sample)
	// NotAfter, when set, caps every request's deadline: requests cut by it
	// are recorded as Canceled, not as errors.
	NotAfter time.Time
	// VerifyContent checks downloaded attachments against the fake CAS's
	// generator; without it the bytes are only counted.
	VerifyContent bool
}

// Device is a simulated mail client with its own protocol state. It is
// not safe for concurrent use: a real device sends one request at a time
// on its account (easbench's fleet gives each device one goroutine).
type Device struct {
	cfg       DeviceConfig
	policyKey uint32
	folderKey string
	// Folders by ServerId; InboxID from FolderSync Type 2.
	Folders  map[string]int
	InboxID  string
	syncKeys map[string]string
	// Attachments seen in synced messages (FileReference), newest last.
	Attachments []string
	// decision is the gateway's decision for this device as its answers
	// show it (Decision).
	decision string
	// Items counts items received by Sync; LastSubject is the subject of
	// the last one (easgate demo tells the quarantine notice by it).
	Items       int
	LastSubject string
	// HeartbeatLimit is the interval a Ping Status 5 answer allowed.
	HeartbeatLimit int
	clientN        int
	// held and maxHeld count Pings in flight across a fleet (may be nil).
	held, maxHeld *atomic.Int64
}

// NewDevice returns a device that has not contacted the server yet.
func NewDevice(cfg DeviceConfig) *Device {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(nil)
	}
	if cfg.Profile.BodyType == 0 {
		cfg.Profile.BodyType = 1
	}
	return &Device{cfg: cfg, Folders: map[string]int{}, syncKeys: map[string]string{}}
}

// The gateway's decisions for a device, as easbench sees them in the
// answers (Device.Decision).
const (
	DecisionAllowed     = "allowed"     // a Sync reached the mailbox (the CAS's sync keys)
	DecisionQuarantined = "quarantined" // easgate's emulated sync keys, or Status 130 denials
	DecisionBlocked     = "blocked"     // Status 129 (or another access status)
)

// Decision is the gateway's decision for this device, from the last
// answer that showed one: "" before any did (a device that never got
// through Setup, for instance).
func (d *Device) Decision() string { return d.decision }

// NoteRefusal records what an error answer says about the gateway's
// decision (the fleet calls it for every error): a blocked or denied
// answer sets Decision.
func (d *Device) NoteRefusal(err error) {
	switch ErrorKind(err) {
	case KindBlocked:
		d.decision = DecisionBlocked
	case KindDenied:
		d.decision = DecisionQuarantined
	}
}

// IsEmulatedSyncKey reports whether a Sync key is one easgate's quarantine
// emulation issued: "Q", 12 hex digits, "-", a sequence number
// (proxy/quarantine; a test in proxy checks that they agree). Exchange's
// keys are numbers or {GUID}N, never this.
func IsEmulatedSyncKey(k string) bool {
	if len(k) < 15 || k[0] != 'Q' || k[13] != '-' {
		return false
	}
	for _, c := range k[1:13] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	for _, c := range k[14:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// PolicyKey is the device's final policy key (0 before Provision).
func (d *Device) PolicyKey() uint32 { return d.policyKey }

// errCanceled marks a request cut by DeviceConfig.NotAfter.
var errCanceled = errors.New("bench: request cut by the end of the run")

// IsCanceled reports whether err only means the run ended mid-request.
func IsCanceled(err error) bool { return errors.Is(err, errCanceled) }

type response struct {
	status int
	body   []byte
	header fasthttp.ResponseHeader
	tree   *node
}

type reqOpts struct {
	contentType string
	attachment  string // GetAttachment AttachmentName
	saveInSent  bool
	multipart   bool
	hold        time.Duration // expected server hold (already scaled)
	longPoll    bool
	noBody      bool // OPTIONS
	sink        func(io.Reader) (int64, error)
}

// url builds the request URI in the profile's query form.
func (d *Device) url(cmd eas.Command, o *reqOpts) (uri string, headers [][2]string) {
	p := d.cfg.Profile
	base := strings.TrimRight(d.cfg.Target, "/") + "/Microsoft-Server-ActiveSync"
	if cmd == eas.CmdOptions {
		return base, nil
	}
	if p.Base64 && p.Version >= eas.V121 {
		var r eas.Request
		r.Command = cmd
		r.Version = p.Version
		r.Locale = 0x0409
		r.DeviceID = []byte(d.cfg.DeviceID)
		r.DeviceType = []byte(p.DeviceType)
		r.User = []byte(d.cfg.User)
		r.HasPolicyKey = d.policyKey != 0
		r.PolicyKey = d.policyKey
		r.AttachmentName = []byte(o.attachment)
		r.SaveInSent = o.saveInSent
		r.AcceptMultiPart = o.multipart
		q := eas.AppendBase64Query(nil, &r)
		if len(q) > 0 {
			return base + "?" + string(q), nil
		}
	}
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("?Cmd=")
	b.WriteString(cmd.String())
	b.WriteString("&User=")
	b.WriteString(queryEscape(d.cfg.User))
	b.WriteString("&DeviceId=")
	b.WriteString(queryEscape(d.cfg.DeviceID))
	b.WriteString("&DeviceType=")
	b.WriteString(queryEscape(p.DeviceType))
	if o.attachment != "" {
		b.WriteString("&AttachmentName=")
		b.WriteString(queryEscape(o.attachment))
	}
	if o.saveInSent {
		b.WriteString("&SaveInSent=T")
	}
	headers = append(headers, [2]string{"MS-ASProtocolVersion", p.Version.String()})
	headers = append(headers, [2]string{"X-MS-PolicyKey", strconv.FormatUint(uint64(d.policyKey), 10)})
	if o.multipart {
		headers = append(headers, [2]string{"MS-ASAcceptMultiPart", "T"})
	}
	return b.String(), headers
}

func queryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// roundTrip sends one request and records it. It does not interpret EAS
// statuses.
func (d *Device) roundTrip(cmd eas.Command, body []byte, o *reqOpts) (*response, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	uri, hdrs := d.url(cmd, o)
	req.SetRequestURI(uri)
	req.URI().DisablePathNormalizing = true
	if cmd == eas.CmdOptions {
		req.Header.SetMethod(fasthttp.MethodOptions)
	} else {
		req.Header.SetMethod(fasthttp.MethodPost)
		ct := o.contentType
		if ct == "" {
			ct = ctWBXML
		}
		req.Header.SetContentType(ct)
		req.SetBody(body)
	}
	req.Header.Set("User-Agent", d.cfg.Profile.UserAgent)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(d.cfg.User+":"+d.cfg.Password)))
	req.Header.Set("Accept-Language", "en-US")
	for _, h := range hdrs {
		req.Header.Set(h[0], h[1])
	}

	start := time.Now()
	deadline := start.Add(d.cfg.Timeout + o.hold)
	capped := false
	if !d.cfg.NotAfter.IsZero() && d.cfg.NotAfter.Before(deadline) {
		deadline, capped = d.cfg.NotAfter, true
	}
	s := Sample{Command: cmd.String(), Start: start, BytesOut: int64(len(body)), LongPoll: o.longPoll}
	if o.longPoll && d.held != nil {
		n := d.held.Add(1)
		defer d.held.Add(-1)
		if d.maxHeld != nil {
			for m := d.maxHeld.Load(); n > m && !d.maxHeld.CompareAndSwap(m, n); m = d.maxHeld.Load() {
			}
		}
	}
	err := d.cfg.Client.DoDeadline(req, resp, deadline)
	out := &response{}
	if err == nil {
		out.status = resp.StatusCode()
		resp.Header.CopyTo(&out.header)
		if o.sink != nil && out.status == fasthttp.StatusOK {
			s.BytesIn, err = d.readBody(resp, o.sink)
		} else {
			out.body, err = d.readAll(resp)
			s.BytesIn = int64(len(out.body))
		}
	}
	s.Duration = time.Since(start)
	s.Status = out.status
	if err != nil {
		if capped && !time.Now().Before(deadline.Add(-50*time.Millisecond)) && ErrorKind(err) == "timeout" {
			err = errCanceled
			s.Canceled = true
		}
	}
	if err == nil && out.status != fasthttp.StatusOK && out.status != 449 {
		err = d.httpError(cmd, out)
	}
	if err != nil && !s.Canceled {
		s.Kind = ErrorKind(err)
		var pe *ProtocolError
		if errors.As(err, &pe) {
			pe.recorded = true
		}
	}
	if d.cfg.Record != nil {
		d.cfg.Record(s)
	}
	if err != nil {
		return out, err
	}
	return out, nil
}

func (d *Device) httpError(cmd eas.Command, r *response) error {
	he := &HTTPError{Command: cmd.String(), Status: r.status}
	if ra := r.header.Peek("Retry-After"); len(ra) > 0 {
		if secs, err := strconv.Atoi(string(ra)); err == nil {
			he.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return he
}

// maxResponse bounds bodies read into memory (attachments go to a sink).
const maxResponse = 64 << 20

func (d *Device) readAll(resp *fasthttp.Response) ([]byte, error) {
	if s := resp.BodyStream(); s != nil {
		b, err := io.ReadAll(io.LimitReader(s, maxResponse+1))
		if err == nil && len(b) > maxResponse {
			err = &ProtocolError{Msg: "response body over 64 MiB"}
		}
		return b, err
	}
	return append([]byte(nil), resp.Body()...), nil
}

func (d *Device) readBody(resp *fasthttp.Response, sink func(io.Reader) (int64, error)) (int64, error) {
	if s := resp.BodyStream(); s != nil {
		return sink(s)
	}
	return sink(bytes.NewReader(resp.Body()))
}

// eas sends a command and decodes its WBXML answer. A Provision nudge
// (HTTP 449, or Status 142/143/144 in the command's namespace) makes the
// device Provision and retry once, as real clients do. An empty 200 body
// gives a nil tree.
func (d *Device) eas(cmd eas.Command, body []byte, o *reqOpts) (*response, error) {
	for attempt := 0; ; attempt++ {
		r, err := d.roundTrip(cmd, body, o)
		if err != nil {
			return r, err
		}
		nudged := r.status == 449
		if !nudged && len(r.body) > 0 && !o.multipart && !bytes.HasPrefix(r.header.ContentType(), []byte(ctMultipart)) {
			r.tree, err = decodeTree(r.body)
			if err != nil {
				return r, &ProtocolError{Command: cmd.String(), Msg: "bad WBXML answer: " + err.Error()}
			}
			if _, st, ok := statusTags(cmd); ok {
				if v, ok := r.tree.int(st); ok && v >= 142 && v <= 144 {
					nudged = true
				}
			}
		}
		if !nudged {
			return r, nil
		}
		if attempt > 0 {
			return r, &ProtocolError{Command: cmd.String(), Msg: "provisioning nudge right after a successful Provision"}
		}
		if err := d.Provision(); err != nil {
			return r, err
		}
	}
}

func newDoc() *wbxml.Encoder {
	e := wbxml.NewEncoder(make([]byte, 0, 256))
	e.Header()
	return e
}

// Options sends OPTIONS and checks that the server offers the profile's
// protocol version.
func (d *Device) Options() error {
	r, err := d.roundTrip(eas.CmdOptions, nil, &reqOpts{noBody: true})
	if err != nil {
		return err
	}
	if r.status != fasthttp.StatusOK {
		return &HTTPError{Command: "OPTIONS", Status: r.status}
	}
	versions := string(r.header.Peek("MS-ASProtocolVersions"))
	for _, v := range strings.Split(versions, ",") {
		if strings.TrimSpace(v) == d.cfg.Profile.Version.String() {
			if len(r.header.Peek("MS-ASProtocolCommands")) == 0 {
				return &ProtocolError{Command: "OPTIONS", Msg: "no MS-ASProtocolCommands header"}
			}
			return nil
		}
	}
	return &ProtocolError{Command: "OPTIONS", Msg: fmt.Sprintf("version %s not offered (MS-ASProtocolVersions %q)", d.cfg.Profile.Version, versions)}
}

func (d *Device) writeDeviceInfo(e *wbxml.Encoder) {
	info := d.cfg.Profile.Info
	e.Start(wbxml.SettingsDeviceInformation)
	e.Start(wbxml.SettingsSet)
	el := func(t wbxml.Tag, v string) {
		if v != "" {
			e.Element(t, v)
		}
	}
	el(wbxml.SettingsModel, info.Model)
	el(wbxml.SettingsIMEI, info.IMEI)
	el(wbxml.SettingsFriendlyName, info.FriendlyName)
	el(wbxml.SettingsOS, info.OS)
	el(wbxml.SettingsOSLanguage, info.OSLanguage)
	el(wbxml.SettingsPhoneNumber, info.PhoneNumber)
	if d.cfg.Profile.Version >= eas.V121 {
		el(wbxml.SettingsUserAgent, info.UserAgent)
	}
	if d.cfg.Profile.Version >= eas.V140 {
		el(wbxml.SettingsEnableOutboundSMS, "0")
		el(wbxml.SettingsMobileOperator, info.MobileOperator)
	}
	e.End()
	e.End()
}

// Provision runs the two-phase Provision of MS-ASPROV §3.1.5.1; 14.1 and
// later send DeviceInformation in the initial request.
func (d *Device) Provision() error {
	d.policyKey = 0
	e := newDoc()
	e.Start(wbxml.ProvisionProvision)
	if d.cfg.Profile.Version >= eas.V141 {
		d.writeDeviceInfo(e)
	}
	e.Start(wbxml.ProvisionPolicies)
	e.Start(wbxml.ProvisionPolicy)
	e.Element(wbxml.ProvisionPolicyType, policyTypeWBXML)
	e.End()
	e.End()
	e.End()
	r, err := d.roundTrip(eas.CmdProvision, e.Bytes(), &reqOpts{})
	if err != nil {
		return err
	}
	temp, err := d.provisionAnswer(r, true)
	if err != nil {
		return err
	}
	e = newDoc()
	e.Start(wbxml.ProvisionProvision)
	e.Start(wbxml.ProvisionPolicies)
	e.Start(wbxml.ProvisionPolicy)
	e.Element(wbxml.ProvisionPolicyType, policyTypeWBXML)
	e.Element(wbxml.ProvisionPolicyKey, strconv.FormatUint(uint64(temp), 10))
	e.Element(wbxml.ProvisionStatus, "1")
	e.End()
	e.End()
	e.End()
	d.policyKey = temp // clients send the temporary key with the ack
	r, err = d.roundTrip(eas.CmdProvision, e.Bytes(), &reqOpts{})
	if err != nil {
		d.policyKey = 0
		return err
	}
	final, err := d.provisionAnswer(r, false)
	if err != nil {
		d.policyKey = 0
		return err
	}
	d.policyKey = final
	return nil
}

func (d *Device) provisionAnswer(r *response, initial bool) (uint32, error) {
	perr := func(format string, a ...any) error {
		return &ProtocolError{Command: "Provision", Msg: fmt.Sprintf(format, a...)}
	}
	if r.status != fasthttp.StatusOK {
		return 0, perr("HTTP %d", r.status)
	}
	t, err := decodeTree(r.body)
	if err != nil {
		return 0, perr("bad WBXML answer: %v", err)
	}
	if t.tag != wbxml.ProvisionProvision {
		return 0, perr("root %s", t.tag)
	}
	if st, _ := t.int(wbxml.ProvisionStatus); st != 1 {
		return 0, statusError("Provision", "Status", st)
	}
	pol := t.path(wbxml.ProvisionPolicies, wbxml.ProvisionPolicy)
	if st, _ := pol.int(wbxml.ProvisionStatus); st != 1 {
		return 0, perr("Policy Status %d", st)
	}
	if initial && pol.path(wbxml.ProvisionData, wbxml.ProvisionEASProvisionDoc) == nil {
		return 0, perr("no EASProvisionDoc in the initial answer")
	}
	k, err := strconv.ParseUint(pol.str(wbxml.ProvisionPolicyKey), 10, 32)
	if err != nil || k == 0 {
		return 0, perr("bad PolicyKey %q", pol.str(wbxml.ProvisionPolicyKey))
	}
	return uint32(k), nil
}

// Settings sends DeviceInformation (and asks for UserInformation).
func (d *Device) Settings() error {
	e := newDoc()
	e.Start(wbxml.SettingsSettings)
	d.writeDeviceInfo(e)
	e.Start(wbxml.SettingsUserInformation)
	e.Empty(wbxml.SettingsGet)
	e.End()
	e.End()
	r, err := d.eas(eas.CmdSettings, e.Bytes(), &reqOpts{})
	if err != nil {
		return err
	}
	if r.tree == nil || r.tree.tag != wbxml.SettingsSettings {
		return &ProtocolError{Command: "Settings", Msg: "no Settings answer"}
	}
	if st, _ := r.tree.int(wbxml.SettingsStatus); st != 1 {
		return statusError("Settings", "Status", st)
	}
	if st, _ := r.tree.child(wbxml.SettingsDeviceInformation).int(wbxml.SettingsStatus); st != 1 {
		return &ProtocolError{Command: "Settings", Msg: fmt.Sprintf("DeviceInformation Status %d", st)}
	}
	return nil
}

// FolderSync synchronises the folder hierarchy (SyncKey 0 the first time).
func (d *Device) FolderSync() error {
	key := d.folderKey
	if key == "" {
		key = "0"
	}
	e := newDoc()
	e.Start(wbxml.FolderHierarchyFolderSync)
	e.Element(wbxml.FolderHierarchySyncKey, key)
	e.End()
	r, err := d.eas(eas.CmdFolderSync, e.Bytes(), &reqOpts{})
	if err != nil {
		return err
	}
	t := r.tree
	if t == nil || t.tag != wbxml.FolderHierarchyFolderSync {
		return &ProtocolError{Command: "FolderSync", Msg: "no FolderSync answer"}
	}
	st, _ := t.int(wbxml.FolderHierarchyStatus)
	if st == 9 && key != "0" {
		d.folderKey = ""
		d.syncKeys = map[string]string{}
		return d.FolderSync()
	}
	if st != 1 {
		return statusError("FolderSync", "Status", st)
	}
	if key == "0" {
		d.Folders = map[string]int{}
		d.syncKeys = map[string]string{}
	}
	for _, a := range t.path(wbxml.FolderHierarchyChanges).children(wbxml.FolderHierarchyAdd) {
		typ, _ := a.int(wbxml.FolderHierarchyType)
		id := a.str(wbxml.FolderHierarchyServerId)
		d.Folders[id] = typ
		if typ == 2 {
			d.InboxID = id
		}
	}
	d.folderKey = t.str(wbxml.FolderHierarchySyncKey)
	if d.folderKey == "" || d.InboxID == "" {
		return &ProtocolError{Command: "FolderSync", Msg: "no SyncKey or no Inbox (Type 2) in the hierarchy"}
	}
	return nil
}

// Sync runs one Sync request on folder (priming with SyncKey 0 when the
// folder has no key yet). It returns the number of items received and
// whether the server has more.
func (d *Device) Sync(folder string) (items int, more bool, err error) {
	key := d.syncKeys[folder]
	if key == "" {
		key = "0"
	}
	e := newDoc()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	e.Start(wbxml.AirSyncCollection)
	e.Element(wbxml.AirSyncSyncKey, key)
	e.Element(wbxml.AirSyncCollectionId, folder)
	if key != "0" {
		e.Element(wbxml.AirSyncDeletesAsMoves, "1")
		e.Empty(wbxml.AirSyncGetChanges)
		e.Element(wbxml.AirSyncWindowSize, "25")
		e.Start(wbxml.AirSyncOptions)
		e.Element(wbxml.AirSyncFilterType, "3")
		e.Start(wbxml.AirSyncBaseBodyPreference)
		e.Element(wbxml.AirSyncBaseType, strconv.Itoa(d.cfg.Profile.BodyType))
		e.Element(wbxml.AirSyncBaseTruncationSize, "32768")
		e.End()
		e.End()
	}
	e.End()
	e.End()
	e.End()
	r, err := d.eas(eas.CmdSync, e.Bytes(), &reqOpts{})
	if err != nil {
		return 0, false, err
	}
	if r.tree == nil {
		if key == "0" {
			return 0, false, &ProtocolError{Command: "Sync", Msg: "empty answer to SyncKey 0"}
		}
		return 0, false, nil // empty Sync response: no changes
	}
	if r.tree.tag != wbxml.AirSyncSync {
		return 0, false, &ProtocolError{Command: "Sync", Msg: "root " + r.tree.tag.String()}
	}
	if st, ok := r.tree.int(wbxml.AirSyncStatus); ok && st != 1 {
		return 0, false, statusError("Sync", "Status", st)
	}
	for _, c := range r.tree.path(wbxml.AirSyncCollections).children(wbxml.AirSyncCollection) {
		if c.str(wbxml.AirSyncCollectionId) != folder {
			continue
		}
		st, _ := c.int(wbxml.AirSyncStatus)
		if st == 3 {
			d.syncKeys[folder] = ""
			return 0, false, &ProtocolError{Command: "Sync", Msg: "Status 3 (invalid sync key) for a key the server issued"}
		}
		if st != 1 {
			return 0, false, statusError("Sync", "collection Status", st)
		}
		d.syncKeys[folder] = c.str(wbxml.AirSyncSyncKey)
		if IsEmulatedSyncKey(d.syncKeys[folder]) {
			d.decision = DecisionQuarantined
		} else {
			d.decision = DecisionAllowed
		}
		more = c.has(wbxml.AirSyncMoreAvailable)
		for _, add := range c.path(wbxml.AirSyncCommands).children(wbxml.AirSyncAdd) {
			items++
			data := add.child(wbxml.AirSyncApplicationData)
			if data.path(wbxml.AirSyncBaseBody, wbxml.AirSyncBaseData) == nil || data.str(wbxml.EmailSubject) == "" {
				return items, more, &ProtocolError{Command: "Sync", Msg: "Add without Subject or Body"}
			}
			d.LastSubject = data.str(wbxml.EmailSubject)
			for _, a := range data.path(wbxml.AirSyncBaseAttachments).children(wbxml.AirSyncBaseAttachment) {
				if ref := a.str(wbxml.AirSyncBaseFileReference); ref != "" {
					d.Attachments = append(d.Attachments, ref)
				}
			}
		}
		if len(d.Attachments) > 64 {
			d.Attachments = append(d.Attachments[:0], d.Attachments[len(d.Attachments)-64:]...)
		}
		d.Items += items
		if d.syncKeys[folder] == "" {
			return items, more, &ProtocolError{Command: "Sync", Msg: "collection without SyncKey"}
		}
		return items, more, nil
	}
	return 0, false, &ProtocolError{Command: "Sync", Msg: "answer lacks collection " + folder}
}

// SyncAll syncs folder until the server has nothing more (priming first
// when needed). It returns the number of items received.
func (d *Device) SyncAll(folder string) (int, error) {
	total := 0
	for i := 0; i < 10000; i++ {
		primed := d.syncKeys[folder] != ""
		n, more, err := d.Sync(folder)
		total += n
		if err != nil {
			return total, err
		}
		if primed && !more {
			return total, nil
		}
	}
	return total, &ProtocolError{Command: "Sync", Msg: "MoreAvailable never ended"}
}

// Ping sends a Ping over the Inbox with heartbeat hb (seconds on the
// protocol's clock) and returns the Ping Status and changed folders.
func (d *Device) Ping(hb int) (status int, folders []string, err error) {
	e := newDoc()
	e.Start(wbxml.PingPing)
	e.Element(wbxml.PingHeartbeatInterval, strconv.Itoa(hb))
	e.Start(wbxml.PingFolders)
	e.Start(wbxml.PingFolder)
	e.Element(wbxml.PingId, d.InboxID)
	e.Element(wbxml.PingClass, "Email")
	e.End()
	e.End()
	e.End()
	hold := time.Duration(float64(time.Duration(hb)*time.Second) / d.cfg.TimeScale)
	r, err := d.eas(eas.CmdPing, e.Bytes(), &reqOpts{hold: hold, longPoll: true})
	if err != nil {
		return 0, nil, err
	}
	if r.tree == nil || r.tree.tag != wbxml.PingPing {
		return 0, nil, &ProtocolError{Command: "Ping", Msg: "no Ping answer"}
	}
	status, _ = r.tree.int(wbxml.PingStatus)
	for _, f := range r.tree.path(wbxml.PingFolders).children(wbxml.PingFolder) {
		folders = append(folders, string(f.text))
	}
	switch status {
	case 1, 7:
	case 5:
		// Interval out of range: the answer carries the allowed one.
		if v, ok := r.tree.int(wbxml.PingHeartbeatInterval); ok && v > 0 {
			d.HeartbeatLimit = v
			return status, nil, nil
		}
		return status, nil, &ProtocolError{Command: "Ping", Msg: "Status 5 without HeartbeatInterval"}
	case 2:
		if len(folders) == 0 {
			return status, nil, &ProtocolError{Command: "Ping", Msg: "Status 2 without folders"}
		}
	default:
		return status, folders, statusError("Ping", "Status", status)
	}
	return status, folders, nil
}

// testMIME builds a message with an attachment of size bytes.
func (d *Device) testMIME(attachSize int) []byte {
	d.clientN++
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s@example.com\r\nTo: colleague@example.com\r\nSubject: easbench message %d\r\n", d.cfg.User, d.clientN)
	b.WriteString("MIME-Version: 1.0\r\n")
	if attachSize <= 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\nHello from easbench.\r\n")
		return b.Bytes()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"easbench\"\r\n\r\n--easbench\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\nSee attachment.\r\n--easbench\r\n")
	b.WriteString("Content-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	raw := genBytes(fmt.Sprintf("send/%s/%d", d.cfg.DeviceID, d.clientN), attachSize, false)
	enc := base64.StdEncoding.EncodeToString(raw)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n--easbench--\r\n")
	return b.Bytes()
}

// SendMail sends a message with an attachment of attachSize bytes: WBXML
// ComposeMail from 14.0, message/rfc822 with SaveInSent=T up to 12.1.
func (d *Device) SendMail(attachSize int) error {
	mime := d.testMIME(attachSize)
	if d.cfg.Profile.Version < eas.V140 {
		r, err := d.eas(eas.CmdSendMail, mime, &reqOpts{contentType: ctRFC822, saveInSent: true})
		if err != nil {
			return err
		}
		if r.tree != nil || len(r.body) > 0 {
			return &ProtocolError{Command: "SendMail", Msg: "non-empty answer to a 12.x SendMail"}
		}
		return nil
	}
	e := wbxml.NewEncoder(make([]byte, 0, len(mime)+64))
	e.Header()
	e.Start(wbxml.ComposeMailSendMail)
	e.Element(wbxml.ComposeMailClientId, fmt.Sprintf("%s-%d", d.cfg.DeviceID, d.clientN))
	e.Empty(wbxml.ComposeMailSaveInSentItems)
	e.Start(wbxml.ComposeMailMime)
	e.Opaque(mime)
	e.End()
	e.End()
	r, err := d.eas(eas.CmdSendMail, e.Bytes(), &reqOpts{})
	if err != nil {
		return err
	}
	if r.tree != nil {
		st, _ := r.tree.int(wbxml.ComposeMailStatus)
		return statusError("SendMail", "Status", st)
	}
	return nil
}

// FetchAttachment downloads an attachment by FileReference: ItemOperations
// Fetch from 14.0 (multipart when the profile asks for it), GetAttachment
// up to 12.1. The bytes are checked against the generator and discarded.
// It returns the attachment size.
func (d *Device) FetchAttachment(ref string) (int64, error) {
	if d.cfg.Profile.Version < eas.V140 {
		var n int64
		_, err := d.eas(eas.CmdGetAttachment, nil, &reqOpts{attachment: ref, sink: func(r io.Reader) (int64, error) {
			var err error
			n, err = d.verifyAttachment(ref, r)
			return n, err
		}})
		return n, err
	}
	e := newDoc()
	e.Start(wbxml.ItemOperationsItemOperations)
	e.Start(wbxml.ItemOperationsFetch)
	e.Element(wbxml.ItemOperationsStore, "Mailbox")
	e.Element(wbxml.AirSyncBaseFileReference, ref)
	e.End()
	e.End()
	multipart := d.cfg.Profile.MultiPart
	var res struct {
		n   int64
		doc []byte
	}
	sink := func(r io.Reader) (int64, error) {
		if multipart {
			return d.readMultipart(ref, r, &res.n, &res.doc)
		}
		// Inline: the base64 Data can be large; decode the small WBXML
		// around it after reading (bounded by maxResponse).
		b, err := io.ReadAll(io.LimitReader(r, maxResponse+1))
		res.doc = b
		return int64(len(b)), err
	}
	r, err := d.eas(eas.CmdItemOperations, e.Bytes(), &reqOpts{multipart: multipart, sink: sink})
	if err != nil {
		return 0, err
	}
	if r.status != fasthttp.StatusOK {
		return 0, &ProtocolError{Command: "ItemOperations", Msg: fmt.Sprintf("HTTP %d", r.status)}
	}
	t, err := decodeTree(res.doc)
	if err != nil {
		return 0, &ProtocolError{Command: "ItemOperations", Msg: "bad WBXML answer: " + err.Error()}
	}
	if st, _ := t.int(wbxml.ItemOperationsStatus); st != 1 {
		return 0, statusError("ItemOperations", "Status", st)
	}
	f := t.path(wbxml.ItemOperationsResponse, wbxml.ItemOperationsFetch)
	if st, _ := f.int(wbxml.ItemOperationsStatus); st != 1 {
		return 0, &ProtocolError{Command: "ItemOperations", Msg: fmt.Sprintf("Fetch Status %d", st)}
	}
	props := f.child(wbxml.ItemOperationsProperties)
	if multipart {
		if props.str(wbxml.ItemOperationsPart) != "1" {
			return 0, &ProtocolError{Command: "ItemOperations", Msg: "multipart answer without Part 1"}
		}
		return res.n, nil
	}
	data := props.child(wbxml.ItemOperationsData)
	if data == nil {
		return 0, &ProtocolError{Command: "ItemOperations", Msg: "Fetch without Data"}
	}
	raw, err := base64.StdEncoding.DecodeString(string(data.text))
	if err != nil {
		return 0, &ProtocolError{Command: "ItemOperations", Msg: "Data is not base64"}
	}
	n, err := d.verifyAttachment(ref, bytes.NewReader(raw))
	return n, err
}

// readMultipart parses an application/vnd.ms-sync.multipart stream: the
// WBXML part is kept, part 1 is verified while it streams.
func (d *Device) readMultipart(ref string, r io.Reader, n *int64, doc *[]byte) (int64, error) {
	perr := func(msg string) error { return &ProtocolError{Command: "ItemOperations", Msg: "multipart: " + msg} }
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, perr("short header")
	}
	count := binary.LittleEndian.Uint32(hdr[:])
	if count < 1 || count > 64 {
		return 0, perr("bad part count")
	}
	table := make([]byte, 8*count)
	if _, err := io.ReadFull(r, table); err != nil {
		return 0, perr("short part table")
	}
	pos := int64(4 + len(table))
	var total int64 = pos
	for i := uint32(0); i < count; i++ {
		off := int64(binary.LittleEndian.Uint32(table[8*i:]))
		size := int64(binary.LittleEndian.Uint32(table[8*i+4:]))
		if off != pos {
			return total, perr("parts not contiguous")
		}
		part := io.LimitReader(r, size)
		switch i {
		case 0:
			if size > maxResponse {
				return total, perr("WBXML part too large")
			}
			b, err := io.ReadAll(part)
			if err != nil || int64(len(b)) != size {
				return total, perr("short WBXML part")
			}
			*doc = b
		case 1:
			got, err := d.verifyAttachment(ref, part)
			if err != nil {
				return total, err
			}
			if got != size {
				return total, perr("short attachment part")
			}
			*n = got
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				return total, err
			}
		}
		pos += size
		total += size
	}
	return total, nil
}

// verifyAttachment reads an attachment and, with VerifyContent, checks it
// against the fake CAS's generator; otherwise the bytes are only counted.
func (d *Device) verifyAttachment(ref string, r io.Reader) (int64, error) {
	if !d.cfg.VerifyContent {
		return io.Copy(io.Discard, r)
	}
	var buf, want [32 << 10]byte
	var n int64
	var g *genReader
	for {
		k, err := r.Read(buf[:])
		if k > 0 {
			if g == nil {
				g = newGenReader("att/"+ref, 1<<62, false)
			}
			_, _ = io.ReadFull(g, want[:k])
			if !bytes.Equal(buf[:k], want[:k]) {
				return n, &ProtocolError{Command: "attachment", Msg: fmt.Sprintf("content differs at byte %d", n)}
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Setup runs the life cycle up to the first Ping: OPTIONS, Provision,
// Settings, FolderSync and a full Sync of the Inbox (plus priming of
// Calendar and Contacts, as phones do).
func (d *Device) Setup() error {
	if err := d.Options(); err != nil {
		return err
	}
	if err := d.Provision(); err != nil {
		return err
	}
	if err := d.Settings(); err != nil {
		return err
	}
	if err := d.FolderSync(); err != nil {
		return err
	}
	for id, typ := range d.Folders {
		if typ == 8 || typ == 9 {
			if _, _, err := d.Sync(id); err != nil {
				return err
			}
		}
	}
	_, err := d.SyncAll(d.InboxID)
	return err
}
