package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// FakeCASConfig configures a FakeCAS. The zero value is a fast, reliable
// server with a small mailbox per user that accepts any credentials.
type FakeCASConfig struct {
	// Latency is added to every answer that is not a held long poll.
	Latency time.Duration
	// FailRate is the fraction of requests answered 503 with Retry-After.
	FailRate float64
	// ResetRate is the fraction of requests whose connection is reset
	// (TCP RST, no response).
	ResetRate float64
	// SlowRate is the fraction of requests delayed by SlowDelay on top of
	// Latency.
	SlowRate float64
	// SlowDelay is the extra delay of a slow request (default 2s).
	SlowDelay time.Duration
	// RetryAfter is the Retry-After of injected 503s (default 30s; sent in
	// whole seconds, at least 1).
	RetryAfter time.Duration
	// Messages is the number of Inbox messages each mailbox starts with
	// (default 50; negative means none).
	Messages int
	// MessageSize is the body size of each generated message in bytes
	// (default 2048).
	MessageSize int
	// AttachmentSize is the size of the attachment carried by every third
	// message (default 64 KiB; negative means no attachments). Attachments
	// are generated while they are sent, never held in memory.
	AttachmentSize int
	// PingChangeEvery delivers one new message to every mailbox at this
	// period (in scaled time, see TimeScale), waking held Pings and Syncs.
	// Zero: mail arrives only through Deliver.
	PingChangeEvery time.Duration
	// MaxHeartbeat is the largest Ping/Sync heartbeat accepted (default
	// 3540s, Exchange's MaxHeartbeatInterval); MinHeartbeat the smallest
	// (default 60s). Out-of-range requests get Ping Status 5 / Sync Status 14
	// with the limit, as Exchange does.
	MaxHeartbeat time.Duration
	MinHeartbeat time.Duration
	// TimeScale divides every held duration (Ping heartbeat, Sync Wait and
	// HeartbeatInterval, PingChangeEvery): 60 turns a 480 s heartbeat into
	// 8 s of wall time. Zero or one is real time.
	TimeScale float64
	// Users maps user name to password for Basic authentication. Nil
	// accepts any credentials (and none). Names compare like eas.SameUser:
	// "CORP\jdoe" and "jdoe@corp.example.com" both match "jdoe".
	Users map[string]string
	// ServerVersion is sent as MS-Server-ActiveSync (default "15.1").
	ServerVersion string
	// MaxRequestBody bounds request bodies (default 64 MiB).
	MaxRequestBody int
}

// FakeCASStats is a snapshot of a FakeCAS's counters.
type FakeCASStats struct {
	// Requests counts EAS requests by command name ("Sync", "OPTIONS",
	// "Ping"...), after authentication and failure injection.
	Requests map[string]int64
	// HTTPStatus counts responses by HTTP status (resets are not counted).
	HTTPStatus map[int]int64
	// PingStatus counts Ping answers by Ping Status value.
	PingStatus map[int]int64
	BytesIn    int64 // request bodies
	BytesOut   int64 // response bodies (streamed bodies counted by size)
	// HeldPings and HeldSyncs are the long polls held right now;
	// MaxHeldPings is the highest number of Pings held at once.
	HeldPings, HeldSyncs, MaxHeldPings int64
	SendMail                           int64 // messages accepted by SendMail
	SendMailBytes                      int64 // MIME bytes accepted
	Provisioned                        int64 // completed two-phase Provisions
	Nudges                             int64 // 449 / Status 142/144 answers
	AuthFailures                       int64 // 401 answers
	BadRequests                        int64 // 400 answers to malformed requests
	Injected503, InjectedResets        int64
	InjectedSlow                       int64
	Delivered                          int64 // messages added by Deliver / PingChangeEvery
	AttachmentBytes                    int64 // attachment bytes sent (ItemOperations, GetAttachment)
	Panics                             int64 // handler panics recovered (must stay 0)
}

// FakeCAS is a fake Exchange Client Access Server: a real fasthttp server
// that answers the EAS client life cycle with per-device state (policy keys,
// folder and item sync keys) over generated mailboxes. It is safe for
// concurrent use.
type FakeCAS struct {
	cfg FakeCASConfig
	srv *fasthttp.Server

	mu        sync.Mutex
	mailboxes map[string]*mailbox
	devices   map[string]*fakeDevice

	closing   chan struct{}
	closeOnce sync.Once
	tickOnce  sync.Once

	reqPool sync.Pool

	st casCounters
}

type casCounters struct {
	requests   [256]atomic.Int64
	http       sync.Map // int -> *atomic.Int64
	ping       [16]atomic.Int64
	bytesIn    atomic.Int64
	bytesOut   atomic.Int64
	heldPings  atomic.Int64
	heldSyncs  atomic.Int64
	maxHeld    atomic.Int64
	sendMail   atomic.Int64
	sendBytes  atomic.Int64
	provision  atomic.Int64
	nudges     atomic.Int64
	authFail   atomic.Int64
	badReq     atomic.Int64
	inj503     atomic.Int64
	injReset   atomic.Int64
	injSlow    atomic.Int64
	delivered  atomic.Int64
	attachment atomic.Int64
	panics     atomic.Int64
}

// mailbox is one user's generated mail store: only counters.
type mailbox struct {
	mu    sync.Mutex
	inbox int // messages 1..inbox exist in the Inbox
	sent  int
	wake  chan struct{} // closed (and replaced) when mail arrives
}

func (m *mailbox) snapshot() (count int, wake <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inbox, m.wake
}

func (m *mailbox) deliver(n int) {
	m.mu.Lock()
	m.inbox += n
	close(m.wake)
	m.wake = make(chan struct{})
	m.mu.Unlock()
}

// fakeDevice is the server-side partnership of one user+device.
type fakeDevice struct {
	mu        sync.Mutex
	tempKey   uint32 // issued by the initial Provision, awaiting the ack
	policyKey uint32 // final key; 0 = not provisioned
	info      eas.DeviceInfo
	folderKey int // FolderSync key; 0 = no hierarchy synced
	cols      map[string]*colState
	lastSync  []syncReqCol // cached Sync request (empty Sync body)
	lastWait  time.Duration
	pingIDs   []string // cached Ping folders (empty Ping body)
	pingBeat  int
}

// colState is the item sync state of one collection of one device.
type colState struct {
	key, pos         int // current sync key and items delivered with it
	prevKey, prevPos int // the previous key, accepted once more (lost response)
}

// NewFakeCAS returns a FakeCAS with cfg's defaults filled in.
func NewFakeCAS(cfg FakeCASConfig) *FakeCAS {
	if cfg.SlowDelay <= 0 {
		cfg.SlowDelay = 2 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 30 * time.Second
	}
	switch {
	case cfg.Messages == 0:
		cfg.Messages = 50
	case cfg.Messages < 0:
		cfg.Messages = 0
	}
	if cfg.MessageSize <= 0 {
		cfg.MessageSize = 2048
	}
	switch {
	case cfg.AttachmentSize == 0:
		cfg.AttachmentSize = 64 << 10
	case cfg.AttachmentSize < 0:
		cfg.AttachmentSize = 0
	}
	if cfg.MaxHeartbeat <= 0 {
		cfg.MaxHeartbeat = 3540 * time.Second
	}
	if cfg.MinHeartbeat <= 0 {
		cfg.MinHeartbeat = 60 * time.Second
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "15.1"
	}
	if cfg.MaxRequestBody <= 0 {
		cfg.MaxRequestBody = 64 << 20
	}
	f := &FakeCAS{
		cfg:       cfg,
		mailboxes: make(map[string]*mailbox),
		devices:   make(map[string]*fakeDevice),
		closing:   make(chan struct{}),
	}
	f.reqPool.New = func() any { return new(eas.Request) }
	f.srv = &fasthttp.Server{
		Handler:                       f.handle,
		Name:                          "Microsoft-IIS/10.0",
		MaxRequestBodySize:            cfg.MaxRequestBody,
		ReadBufferSize:                16 << 10,
		IdleTimeout:                   5 * time.Minute,
		DisableHeaderNamesNormalizing: false,
		NoDefaultContentType:          true,
		NoDefaultDate:                 false,
		CloseOnShutdown:               true,
		ReduceMemoryUsage:             true,
		Concurrency:                   1 << 20,
	}
	return f
}

// Serve answers EAS requests on ln until Close. It returns nil after Close.
func (f *FakeCAS) Serve(ln net.Listener) error {
	f.tickOnce.Do(func() {
		if f.cfg.PingChangeEvery > 0 {
			go f.mailTicker()
		}
	})
	err := f.srv.Serve(ln)
	select {
	case <-f.closing:
		return nil
	default:
	}
	return err
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the
// background until Close. It returns the base URL ("http://127.0.0.1:PORT").
func (f *FakeCAS) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("fake CAS: %w", err)
	}
	go func() { _ = f.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Handler returns the request handler, for callers that run their own
// fasthttp.Server (or an in-memory listener). PingChangeEvery only runs
// under Serve.
func (f *FakeCAS) Handler() fasthttp.RequestHandler { return f.handle }

// Close releases every held long poll (they answer as if their heartbeat
// expired), stops the listeners and waits up to 5 s for connections to
// finish.
func (f *FakeCAS) Close() error {
	var err error
	f.closeOnce.Do(func() {
		close(f.closing)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = f.srv.ShutdownWithContext(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = nil // stragglers are closed by CloseOnShutdown
		}
	})
	return err
}

// Deliver adds n new messages to user's Inbox, waking the user's held Pings
// (Status 2) and held Syncs.
func (f *FakeCAS) Deliver(user string, n int) {
	if n <= 0 {
		return
	}
	f.mailbox(user).deliver(n)
	f.st.delivered.Add(int64(n))
}

// Stats returns a snapshot of the counters.
func (f *FakeCAS) Stats() FakeCASStats {
	s := FakeCASStats{
		Requests:        map[string]int64{},
		HTTPStatus:      map[int]int64{},
		PingStatus:      map[int]int64{},
		BytesIn:         f.st.bytesIn.Load(),
		BytesOut:        f.st.bytesOut.Load(),
		HeldPings:       f.st.heldPings.Load(),
		HeldSyncs:       f.st.heldSyncs.Load(),
		MaxHeldPings:    f.st.maxHeld.Load(),
		SendMail:        f.st.sendMail.Load(),
		SendMailBytes:   f.st.sendBytes.Load(),
		Provisioned:     f.st.provision.Load(),
		Nudges:          f.st.nudges.Load(),
		AuthFailures:    f.st.authFail.Load(),
		BadRequests:     f.st.badReq.Load(),
		Injected503:     f.st.inj503.Load(),
		InjectedResets:  f.st.injReset.Load(),
		InjectedSlow:    f.st.injSlow.Load(),
		Delivered:       f.st.delivered.Load(),
		AttachmentBytes: f.st.attachment.Load(),
		Panics:          f.st.panics.Load(),
	}
	for i := range f.st.requests {
		if n := f.st.requests[i].Load(); n > 0 {
			s.Requests[eas.Command(i).String()] = n
		}
	}
	f.st.http.Range(func(k, v any) bool {
		s.HTTPStatus[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	for i := range f.st.ping {
		if n := f.st.ping[i].Load(); n > 0 {
			s.PingStatus[i] = n
		}
	}
	return s
}

// DeviceInfo returns the DeviceInformation the server stored for user's
// device (from Settings or the 14.1+ Provision).
func (f *FakeCAS) DeviceInfo(user, deviceID string) (eas.DeviceInfo, bool) {
	f.mu.Lock()
	d := f.devices[deviceKey(user, deviceID)]
	f.mu.Unlock()
	if d == nil {
		return eas.DeviceInfo{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info, !d.info.IsZero()
}

// scaled converts a protocol duration into wall time.
func (f *FakeCAS) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / f.cfg.TimeScale)
}

func (f *FakeCAS) mailTicker() {
	t := time.NewTicker(max(f.scaled(f.cfg.PingChangeEvery), time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-f.closing:
			return
		case <-t.C:
			f.mu.Lock()
			boxes := make([]*mailbox, 0, len(f.mailboxes))
			for _, m := range f.mailboxes {
				boxes = append(boxes, m)
			}
			f.mu.Unlock()
			for _, m := range boxes {
				m.deliver(1)
				f.st.delivered.Add(1)
			}
		}
	}
}

// mailboxName normalises a user name to the mailbox key: the user part,
// lower case ("CORP\JDoe" and "jdoe@corp.example.com" are both "jdoe").
func mailboxName(user string) string {
	u, _ := eas.SplitUser([]byte(user))
	return strings.ToLower(string(u))
}

func (f *FakeCAS) mailbox(user string) *mailbox {
	name := mailboxName(user)
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.mailboxes[name]
	if m == nil {
		m = &mailbox{inbox: f.cfg.Messages, wake: make(chan struct{})}
		f.mailboxes[name] = m
	}
	return m
}

func deviceKey(user, id string) string { return mailboxName(user) + "\x00" + id }

func (f *FakeCAS) device(user, id string) *fakeDevice {
	k := deviceKey(user, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[k]
	if d == nil {
		d = &fakeDevice{cols: make(map[string]*colState)}
		f.devices[k] = d
	}
	return d
}

// newPolicyKey returns a random non-zero policy key, as Exchange generates.
func newPolicyKey() uint32 {
	for {
		if k := rand.Uint32(); k != 0 {
			return k
		}
	}
}

func (f *FakeCAS) countStatus(code int) {
	v, ok := f.st.http.Load(code)
	if !ok {
		v, _ = f.st.http.LoadOrStore(code, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Content types and fixed header values.
const (
	ctWBXML     = "application/vnd.ms-sync.wbxml"
	ctMultipart = "application/vnd.ms-sync.multipart"
	ctRFC822    = "message/rfc822"

	// protocolVersions is what OPTIONS advertises. 2.5 is not offered:
	// its provisioning (MS-WAP-Provisioning-XML) is not modelled.
	protocolVersions = "12.0,12.1,14.0,14.1,16.0,16.1"
	protocolCommands = "Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection," +
		"DeleteCollection,MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,MoveItems," +
		"GetItemEstimate,MeetingResponse,Search,Settings,Ping,ItemOperations,Provision,ResolveRecipients," +
		"ValidateCert,Find"
	healthPath = "/microsoft-server-activesync/healthcheck.htm"
)

// handle is the fasthttp handler: routing, parsing, authentication, failure
// injection, then one handler per command.
func (f *FakeCAS) handle(ctx *fasthttp.RequestCtx) {
	defer func() {
		if p := recover(); p != nil {
			f.st.panics.Add(1)
			ctx.Response.Reset()
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		}
		if ctx.Hijacked() {
			return // an injected reset: no response
		}
		f.countStatus(ctx.Response.StatusCode())
		if !ctx.Response.IsBodyStream() {
			f.st.bytesOut.Add(int64(len(ctx.Response.Body())))
		}
	}()
	ctx.Response.Header.Set("MS-Server-ActiveSync", f.cfg.ServerVersion)

	if ctx.IsGet() && strings.EqualFold(string(ctx.Path()), healthPath) {
		ctx.SetContentType("text/html")
		ctx.SetBodyString("200 OK<br/>fakecas")
		return
	}

	r := f.reqPool.Get().(*eas.Request)
	defer f.reqPool.Put(r)
	r.Reset()
	if err := r.Parse(ctx.Method(), ctx.Path(), ctx.URI().QueryString(), &ctx.Request.Header); err != nil {
		var pe *eas.ParseError
		status := fasthttp.StatusBadRequest
		if errors.As(err, &pe) {
			switch {
			case pe.Code == eas.ErrNotEAS:
				status = fasthttp.StatusNotFound
			case pe.Code == eas.ErrBadAuthorization:
				f.unauthorized(ctx)
				return
			case pe.HTTPStatus >= 400 && pe.HTTPStatus < 500:
				status = pe.HTTPStatus
			}
		}
		if status == fasthttp.StatusBadRequest {
			f.st.badReq.Add(1)
		}
		ctx.SetStatusCode(status)
		ctx.SetBodyString(err.Error())
		return
	}

	if !f.authenticate(r) {
		f.unauthorized(ctx)
		return
	}

	if f.inject(ctx) {
		return
	}
	if f.cfg.Latency > 0 {
		f.sleep(f.cfg.Latency)
	}

	f.st.requests[r.Command].Add(1)
	if r.Command == eas.CmdOptions {
		f.options(ctx)
		return
	}
	if r.Version < eas.V120 {
		f.badRequest(ctx, "MS-ASProtocolVersion missing or not offered by this server")
		return
	}

	body := ctx.PostBody()
	f.st.bytesIn.Add(int64(len(body)))
	user := string(r.EffectiveUser())
	if user == "" {
		user = "anonymous"
	}
	dev := f.device(user, string(r.DeviceID))
	c := &call{f: f, ctx: ctx, r: r, body: body, user: user, dev: dev, mbox: f.mailbox(user)}

	// Provision needs no policy key. Every other command (Ping included: Z-Push
	// lets it through unprovisioned, Exchange does not) is nudged to
	// Provision when the device's key is missing or wrong, as Exchange does.
	if r.Command == eas.CmdProvision {
		c.provision()
		return
	}
	if !c.provisioned() {
		return
	}
	switch r.Command {
	case eas.CmdSettings:
		c.settings()
	case eas.CmdFolderSync:
		c.folderSync()
	case eas.CmdSync:
		c.sync()
	case eas.CmdPing:
		c.ping()
	case eas.CmdItemOperations:
		c.itemOperations()
	case eas.CmdGetAttachment:
		c.getAttachment()
	case eas.CmdSendMail:
		c.sendMail()
	case eas.CmdGetItemEstimate:
		c.getItemEstimate()
	default:
		ctx.SetStatusCode(fasthttp.StatusNotImplemented)
	}
}

// authenticate checks Basic credentials against cfg.Users.
func (f *FakeCAS) authenticate(r *eas.Request) bool {
	if f.cfg.Users == nil {
		return true
	}
	if !bytes.EqualFold(r.AuthScheme, []byte("Basic")) || len(r.AuthUser) == 0 {
		return false
	}
	for name, pw := range f.cfg.Users {
		if eas.SameUser([]byte(name), r.AuthLogin) && pw == string(r.Password()) {
			// The query's User must be the authenticated user.
			return len(r.User) == 0 || eas.SameUser(r.User, r.AuthLogin)
		}
	}
	return false
}

func (f *FakeCAS) unauthorized(ctx *fasthttp.RequestCtx) {
	f.st.authFail.Add(1)
	ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="fakecas"`)
	ctx.SetStatusCode(fasthttp.StatusUnauthorized)
}

func (f *FakeCAS) badRequest(ctx *fasthttp.RequestCtx, msg string) {
	f.st.badReq.Add(1)
	ctx.Response.Header.Set("X-MS-ASError", msg)
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	ctx.SetBodyString(msg)
}

// inject applies the configured failure rates. It reports whether the
// request has been answered (or its connection reset).
func (f *FakeCAS) inject(ctx *fasthttp.RequestCtx) bool {
	if f.cfg.ResetRate > 0 && rand.Float64() < f.cfg.ResetRate {
		f.st.injReset.Add(1)
		if tc, ok := ctx.Conn().(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) { _ = c.Close() })
		return true
	}
	if f.cfg.FailRate > 0 && rand.Float64() < f.cfg.FailRate {
		f.st.inj503.Add(1)
		secs := int(f.cfg.RetryAfter / time.Second)
		if secs < 1 {
			secs = 1
		}
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(secs))
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		return true
	}
	if f.cfg.SlowRate > 0 && rand.Float64() < f.cfg.SlowRate {
		f.st.injSlow.Add(1)
		f.sleep(f.cfg.SlowDelay)
	}
	return false
}

// sleep waits d or until Close.
func (f *FakeCAS) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-f.closing:
	}
}

func (f *FakeCAS) options(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Allow", "OPTIONS,POST")
	h.Set("Public", "OPTIONS,POST")
	h.Set("MS-ASProtocolVersions", protocolVersions)
	h.Set("MS-ASProtocolCommands", protocolCommands)
	h.Set("Cache-Control", "private")
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// call is one request being answered.
type call struct {
	f    *FakeCAS
	ctx  *fasthttp.RequestCtx
	r    *eas.Request
	body []byte
	user string
	dev  *fakeDevice
	mbox *mailbox
}

func (c *call) writeWBXML(b []byte) {
	c.ctx.SetStatusCode(fasthttp.StatusOK)
	c.ctx.SetContentType(ctWBXML)
	c.ctx.SetBody(b)
}

// tree decodes the request body; on failure it answers 400 and returns nil.
func (c *call) tree(root wbxml.Tag) *node {
	n, err := decodeTree(c.body)
	if err != nil {
		c.f.badRequest(c.ctx, "invalid WBXML: "+err.Error())
		return nil
	}
	if n.tag != root {
		c.f.badRequest(c.ctx, fmt.Sprintf("unexpected root element %s, want %s", n.tag, root))
		return nil
	}
	return n
}
