package sogo_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// easClient is a minimal Exchange ActiveSync phone: it builds the query in
// either form with the eas package, WBXML bodies with wbxml.Encoder, and
// reads responses with the eas readers (or a small tree for the commands
// eas has no response reader for).
type easClient struct {
	url        string // .../Microsoft-Server-ActiveSync
	user, pass string
	version    eas.Version
	base64     bool
	deviceID   string
	deviceType string
	userAgent  string

	policyKey    uint32
	hasPolicyKey bool
	noAuth       bool   // send no Authorization header
	easUser      string // the query's User when it differs from the Basic user

	hc *http.Client
}

// sharedTransport keeps connections alive as phones do; both nginx and
// easgate support that (sogod itself does not, hence nginx in front).
var sharedTransport = &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 32,
	IdleConnTimeout:     90 * time.Second,
	DisableCompression:  true,
}

func newClient(url, user, pass string, version eas.Version, base64 bool, tag string) *easClient {
	return &easClient{
		url: url, user: user, pass: pass, version: version, base64: base64,
		deviceID:   newDeviceID(tag),
		deviceType: "iPhone",
		userAgent:  "Apple-iPhone15C2/2105.236",
		hc:         &http.Client{Transport: sharedTransport, CheckRedirect: noRedirect},
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// withTLS gives c its own connection pool for a TLS listener: base trusts
// the gateway's certificate, cert (nil: none) is the phone's client
// certificate. Connections are kept alive as phones do.
func (c *easClient) withTLS(base *tls.Config, cert *tls.Certificate) *easClient {
	cfg := base.Clone()
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}, CheckRedirect: noRedirect}
	return c
}

// close drops the idle connections of a client's own pool.
func (c *easClient) close() {
	if c.hc.Transport != sharedTransport {
		c.hc.CloseIdleConnections()
	}
}

type easResponse struct {
	code   int
	header http.Header
	body   []byte
}

// dump renders a response for a failure message: status, EAS headers and the
// body as XML (or raw when it is not WBXML).
func (r *easResponse) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", r.code)
	for _, h := range []string{"Content-Type", "WWW-Authenticate", "MS-Server-ActiveSync", "X-MS-ASError"} {
		if v := r.header.Get(h); v != "" {
			fmt.Fprintf(&b, "; %s: %s", h, v)
		}
	}
	if len(r.body) > 0 {
		b.WriteString("\n")
		b.WriteString(xmlOf(r.body))
	}
	return b.String()
}

func xmlOf(body []byte) string {
	var x bytes.Buffer
	if err := wbxml.ToXML(&x, body, wbxml.XMLOptions{}); err != nil {
		n := min(len(body), 200)
		return fmt.Sprintf("(not WBXML: %v) %q", err, body[:n])
	}
	return x.String()
}

func (c *easClient) query(cmd eas.Command) (string, error) {
	r := new(eas.Request)
	r.Reset()
	r.Command = cmd
	r.Version = c.version
	r.Locale = 0x0409
	r.User = []byte(c.user)
	if c.easUser != "" {
		r.User = []byte(c.easUser)
	}
	r.DeviceID = []byte(c.deviceID)
	r.DeviceType = []byte(c.deviceType)
	r.PolicyKey, r.HasPolicyKey = c.policyKey, c.hasPolicyKey
	if c.base64 {
		q := eas.AppendBase64Query(nil, r)
		if len(q) == 0 {
			return "", fmt.Errorf("%v cannot be written as a base64 query", cmd)
		}
		return string(q), nil
	}
	return string(eas.AppendPlainQuery(nil, r)), nil
}

// post sends one command. The body may be nil (an empty POST).
func (c *easClient) post(ctx context.Context, cmd eas.Command, body []byte) (*easResponse, error) {
	q, err := c.query(cmd)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.URL.RawQuery = q
	req.Header.Set("Content-Type", "application/vnd.ms-sync.wbxml")
	if !c.base64 {
		req.Header.Set("MS-ASProtocolVersion", c.version.String())
		key := "0"
		if c.hasPolicyKey {
			key = strconv.FormatUint(uint64(c.policyKey), 10)
		}
		req.Header.Set("X-MS-PolicyKey", key)
	}
	return c.send(req)
}

func (c *easClient) options(ctx context.Context) (*easResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, c.url, nil)
	if err != nil {
		return nil, err
	}
	return c.send(req)
}

func (c *easClient) send(req *http.Request) (*easResponse, error) {
	if !c.noAuth {
		req.SetBasicAuth(c.user, c.pass)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the response body: %w", req.Method, err)
	}
	return &easResponse{code: resp.StatusCode, header: resp.Header, body: body}, nil
}

// expectWBXML fails unless resp is HTTP 200 with a WBXML body.
func expectWBXML(cmd string, resp *easResponse) error {
	if resp.code != http.StatusOK {
		return fmt.Errorf("%s: want HTTP 200, got %s", cmd, resp.dump())
	}
	if len(resp.body) == 0 {
		return fmt.Errorf("%s: empty body: %s", cmd, resp.dump())
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.ms-sync.wbxml") {
		return fmt.Errorf("%s: Content-Type %q, want application/vnd.ms-sync.wbxml: %s", cmd, ct, resp.dump())
	}
	return nil
}

// ---------------------------------------------------------------- request bodies

func encode(build func(e *wbxml.Encoder)) []byte {
	e := wbxml.NewEncoder(nil)
	e.Header()
	build(e)
	if err := e.Err(); err != nil {
		panic("building a request body: " + err.Error()) // a bug in the test itself
	}
	return e.Bytes()
}

type deviceInfo struct{ model, imei, friendly, os, lang, phone, agent, operator string }

var phone = deviceInfo{
	model: "iPhone15C2", imei: "356938035643809", friendly: "e2e iPhone", os: "iOS 17.5 21F79",
	lang: "en", phone: "+15555550123", agent: "Apple-iPhone15C2/2105.236", operator: "Example Mobile",
}

// deviceInformation writes settings:DeviceInformation > Set. MobileOperator
// and EnableOutboundSMS exist from 14.0 on.
func deviceInformation(e *wbxml.Encoder, v eas.Version, d deviceInfo) {
	e.Start(wbxml.SettingsDeviceInformation)
	e.Start(wbxml.SettingsSet)
	e.Element(wbxml.SettingsModel, d.model)
	e.Element(wbxml.SettingsIMEI, d.imei)
	e.Element(wbxml.SettingsFriendlyName, d.friendly)
	e.Element(wbxml.SettingsOS, d.os)
	e.Element(wbxml.SettingsOSLanguage, d.lang)
	e.Element(wbxml.SettingsPhoneNumber, d.phone)
	if v >= eas.V140 {
		e.Element(wbxml.SettingsMobileOperator, d.operator)
	}
	e.Element(wbxml.SettingsUserAgent, d.agent)
	e.End()
	e.End()
}

// provisionBody is the initial Provision (with DeviceInformation from 14.1
// on, MS-ASPROV §3.1.5.1), or the acknowledgement when key is set.
func provisionBody(v eas.Version, key *uint32) []byte {
	return encode(func(e *wbxml.Encoder) {
		e.Start(wbxml.ProvisionProvision)
		if key == nil && v >= eas.V141 {
			deviceInformation(e, v, phone)
		}
		e.Start(wbxml.ProvisionPolicies)
		e.Start(wbxml.ProvisionPolicy)
		e.Element(wbxml.ProvisionPolicyType, eas.PolicyTypeWBXML)
		if key != nil {
			e.Element(wbxml.ProvisionPolicyKey, strconv.FormatUint(uint64(*key), 10))
			e.Element(wbxml.ProvisionStatus, "1")
		}
		e.End()
		e.End()
		e.End()
	})
}

func settingsBody(v eas.Version) []byte {
	return encode(func(e *wbxml.Encoder) {
		e.Start(wbxml.SettingsSettings)
		deviceInformation(e, v, phone)
		e.End()
	})
}

func folderSyncBody(key string) []byte {
	return encode(func(e *wbxml.Encoder) {
		e.Start(wbxml.FolderHierarchyFolderSync)
		e.Element(wbxml.FolderHierarchySyncKey, key)
		e.End()
	})
}

// syncBody asks for one collection. The first request (key "0") carries only
// SyncKey and CollectionId (MS-ASCMD §2.2.3.79: GetChanges with SyncKey 0 is
// an error); later ones ask for changes, a window and plain-text bodies.
func syncBody(v eas.Version, key, collection string, window int) []byte {
	return encode(func(e *wbxml.Encoder) {
		e.Start(wbxml.AirSyncSync)
		e.Start(wbxml.AirSyncCollections)
		e.Start(wbxml.AirSyncCollection)
		if v < eas.V140 {
			e.Element(wbxml.AirSyncClass, "Email")
		}
		e.Element(wbxml.AirSyncSyncKey, key)
		e.Element(wbxml.AirSyncCollectionId, collection)
		if key != "0" {
			e.Empty(wbxml.AirSyncDeletesAsMoves)
			e.Empty(wbxml.AirSyncGetChanges)
			e.Element(wbxml.AirSyncWindowSize, strconv.Itoa(window))
			e.Start(wbxml.AirSyncOptions)
			e.Element(wbxml.AirSyncFilterType, "0")
			e.Start(wbxml.AirSyncBaseBodyPreference)
			e.Element(wbxml.AirSyncBaseType, "1")
			e.Element(wbxml.AirSyncBaseTruncationSize, "512")
			e.End()
			e.End()
		}
		e.End()
		e.End()
		e.End()
	})
}

func pingBody(heartbeat int, folder string) []byte {
	return encode(func(e *wbxml.Encoder) {
		e.Start(wbxml.PingPing)
		e.Element(wbxml.PingHeartbeatInterval, strconv.Itoa(heartbeat))
		e.Start(wbxml.PingFolders)
		e.Start(wbxml.PingFolder)
		e.Element(wbxml.PingId, folder)
		e.Element(wbxml.PingClass, "Email")
		e.End()
		e.End()
		e.End()
	})
}

// ---------------------------------------------------------------- response tree

// node is one element of a decoded response, for the responses eas has no
// reader for (Settings, Sync with its items).
type node struct {
	tag      wbxml.Tag
	text     string
	children []*node
}

func parseTree(body []byte) (*node, error) {
	d := wbxml.NewDecoder(body)
	var stack []*node
	var root *node
	for {
		tok, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok.Kind {
		case wbxml.StartTag:
			n := &node{tag: tok.Tag}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			if tok.HasContent {
				stack = append(stack, n)
			}
		case wbxml.EndTag:
			stack = stack[:len(stack)-1]
		case wbxml.Text, wbxml.Opaque:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok.Data)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// child returns the first child with tag t, or nil.
func (n *node) child(t wbxml.Tag) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.tag == t {
			return c
		}
	}
	return nil
}

// path follows first children along tags.
func (n *node) path(tags ...wbxml.Tag) *node {
	for _, t := range tags {
		n = n.child(t)
	}
	return n
}

func (n *node) all(t wbxml.Tag) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, c := range n.children {
		if c.tag == t {
			out = append(out, c)
		}
	}
	return out
}

func (n *node) str() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(n.text)
}

func (n *node) int() int {
	v, err := strconv.Atoi(n.str())
	if err != nil {
		return -1
	}
	return v
}
