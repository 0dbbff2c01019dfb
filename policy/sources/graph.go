package sources

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
)

// GraphConfig configures the Microsoft Intune source.
type GraphConfig struct {
	TenantID string
	ClientID string
	// ClientSecret, or Certificate+Key (an app registration's certificate
	// credential: a client assertion JWT signed with the key).
	ClientSecret string
	Certificate  *x509.Certificate
	Key          *rsa.PrivateKey
	// AuthorityURL defaults to https://login.microsoftonline.com and GraphURL
	// to https://graph.microsoft.com; tests point both at a local fake.
	AuthorityURL string
	GraphURL     string
	// FullSync is the interval of complete pulls (default 24h), QuickSync of
	// pulls of devices changed since the last sync (default 5m), like the
	// retired Intune Exchange connector.
	FullSync  time.Duration
	QuickSync time.Duration
	// Timeout bounds one HTTP request (default 30s).
	Timeout time.Duration
	Client  *http.Client
	// OnSync, when set, is called after every sync with its outcome, and
	// after a held-back full sync was accepted (full, nil error).
	OnSync func(full bool, devices int, err error)
	// Guard holds back a full sync that returns no device or more than
	// Guard.MaxDrop fewer than the table in force (see Graph.Sync).
	Guard Guard
	// Lease, when set, is asked before every scheduled pull: with several
	// nodes only the one holding the lease pulls (graph_shared.go).
	Lease func(context.Context) bool
	// Publish, when set, receives the table (Export) after each pull of
	// this node, for the other nodes (Import).
	Publish func(table []byte)
	// Release, when set, is called by Close: it gives the lease up so
	// that another node pulls at once instead of after the lease expires.
	Release func()
}

// Graph pulls Intune's managed devices from Microsoft Graph
// (GET /v1.0/deviceManagement/managedDevices, paged by @odata.nextLink) into
// a local verdict table and answers lookups from it. Lookups never touch the
// network; until the first full sync has finished they fail with
// policy.ErrUnavailable, so on_unavailable and stale verdicts apply.
type Graph struct {
	cfg    GraphConfig
	client *http.Client

	table    atomic.Pointer[graphTable]
	lastSync atomic.Int64 // unix nanos of the last successful sync start

	gmu       sync.Mutex // guards guard and heldTable
	guard     guardState
	heldTable *graphTable // the held-back full sync, applied if accepted

	tokMu  sync.Mutex
	token  string
	tokExp time.Time

	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

type graphDevice struct {
	upn      string
	state    policy.State
	access   string
	os, ver  string
	lastSync time.Time
}

type graphTable struct {
	byDevice map[string][]graphDevice // lower-cased easDeviceId
	entries  int
	at       time.Time
}

// graphManagedDevice is the subset of microsoft.graph.managedDevice we read.
type graphManagedDevice struct {
	ID                  string `json:"id"`
	UserPrincipalName   string `json:"userPrincipalName"`
	EasDeviceID         string `json:"easDeviceId"`
	EasActivated        bool   `json:"easActivated"`
	ComplianceState     string `json:"complianceState"`
	ExchangeAccessState string `json:"exchangeAccessState"`
	OperatingSystem     string `json:"operatingSystem"`
	OSVersion           string `json:"osVersion"`
	LastSyncDateTime    string `json:"lastSyncDateTime"`
}

const graphSelect = "id,userPrincipalName,easDeviceId,easActivated,complianceState,exchangeAccessState,operatingSystem,osVersion,lastSyncDateTime"

// NewGraph validates cfg. Call Start to begin syncing.
func NewGraph(cfg GraphConfig) (*Graph, error) {
	if cfg.TenantID == "" || cfg.ClientID == "" {
		return nil, errors.New("graph compliance source: tenant_id and client_id are required")
	}
	if cfg.ClientSecret == "" && (cfg.Certificate == nil || cfg.Key == nil) {
		return nil, errors.New("graph compliance source: a client secret or a certificate and key are required")
	}
	if cfg.AuthorityURL == "" {
		cfg.AuthorityURL = "https://login.microsoftonline.com"
	}
	if cfg.GraphURL == "" {
		cfg.GraphURL = "https://graph.microsoft.com"
	}
	cfg.AuthorityURL = strings.TrimRight(cfg.AuthorityURL, "/")
	cfg.GraphURL = strings.TrimRight(cfg.GraphURL, "/")
	if cfg.FullSync <= 0 {
		cfg.FullSync = 24 * time.Hour
	}
	if cfg.QuickSync <= 0 {
		cfg.QuickSync = 5 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	c := cfg.Client
	if c == nil {
		c = &http.Client{}
	}
	return &Graph{cfg: cfg, client: c, stop: make(chan struct{}), guard: guardState{g: cfg.Guard, source: "graph"}}, nil
}

// Name implements policy.Source.
func (g *Graph) Name() string { return "graph" }

// Start runs a full sync now and then full and quick syncs on their
// intervals, until Close.
func (g *Graph) Start() {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-g.stop; cancel() }()
		g.pull(ctx, true) // graph_shared.go: sync, report, publish
		full := time.NewTicker(g.cfg.FullSync)
		quick := time.NewTicker(g.cfg.QuickSync)
		defer full.Stop()
		defer quick.Stop()
		var accept <-chan time.Time
		if g.cfg.Guard.AcceptPath != "" {
			t := time.NewTicker(acceptCheck)
			defer t.Stop()
			accept = t.C
		}
		for {
			select {
			case <-g.stop:
				return
			case <-accept:
				if g.CheckAccept() {
					g.report(true, nil)
				}
			case <-full.C:
				g.pull(ctx, true)
			case <-quick.C:
				g.pull(ctx, g.table.Load() == nil)
			}
		}
	}()
}

// acceptCheck is how often a running Graph source looks for the accept
// marker of a held-back full sync.
const acceptCheck = 2 * time.Second

func (g *Graph) report(full bool, err error) {
	if g.cfg.OnSync != nil {
		n := 0
		if t := g.table.Load(); t != nil {
			n = t.entries
		}
		g.cfg.OnSync(full, n, err)
	}
}

// CheckAccept applies the held-back full sync when the accept marker names
// its digest, and reports whether it did. Start calls it every few seconds.
func (g *Graph) CheckAccept() bool {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	if g.guard.held == nil || g.heldTable == nil {
		return false
	}
	if ok, _ := g.guard.accepted(g.guard.heldSum); !ok {
		return false
	}
	sum, t := g.guard.heldSum, g.heldTable
	g.guard.consume(sum)
	g.heldTable = nil
	g.table.Store(t)
	// Quick syncs since the held pull merged into the old table; the next
	// one asks for every change since the accepted pull.
	g.lastSync.Store(t.at.UnixNano())
	g.guard.end(EndedByAcceptFile, t.entries, sum)
	return true
}

// HeldBack returns the full sync held back now, or nil.
func (g *Graph) HeldBack() *HeldBack {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	if g.guard.held == nil {
		return nil
	}
	h := *g.guard.held
	return &h
}

// Close stops the sync loop.
func (g *Graph) Close() error {
	g.once.Do(func() { close(g.stop) })
	g.wg.Wait()
	if g.cfg.Release != nil {
		g.cfg.Release()
	}
	return nil
}

// Lookup implements policy.Source from the local table.
func (g *Graph) Lookup(_ context.Context, q policy.Query) (policy.Verdict, error) {
	t := g.table.Load()
	if t == nil {
		return policy.Verdict{}, fmt.Errorf("%w: the first sync from Microsoft Graph has not finished", policy.ErrUnavailable)
	}
	v := policy.Verdict{State: policy.StateUnknown, Source: "graph", Fetched: t.at}
	for _, d := range t.byDevice[strings.ToLower(q.DeviceID)] {
		if eas.SameUser([]byte(d.upn), []byte(q.User)) {
			v.State = d.state
			break
		}
	}
	return v, nil
}

// Sync pulls managed devices. A full sync replaces the table; a quick sync
// merges the devices changed since the last sync into it.
//
// A full sync that returns no device, or more than Guard.MaxDrop fewer
// entries (user and device pairs) than the table in force, is held back:
// Sync returns a *HeldBack and the table in force stays, until
// `easgate compliance accept` names the held pull's digest (CheckAccept).
// A later full sync replaces the held pull; the same pull again (same
// digest) is not reported twice. The first full sync has no table to
// compare with: only an empty one is held back.
func (g *Graph) Sync(ctx context.Context, full bool) error {
	started := time.Now()
	q := url.Values{"$select": {graphSelect}}
	old := g.table.Load()
	if !full && old != nil {
		since := time.Unix(0, g.lastSync.Load()).UTC().Add(-time.Minute) // overlap a minute for clock skew
		q.Set("$filter", "lastSyncDateTime ge "+since.Format(time.RFC3339))
	} else {
		full = true
	}
	next := g.cfg.GraphURL + "/v1.0/deviceManagement/managedDevices?" + q.Encode()
	byDevice := map[string][]graphDevice{}
	if !full {
		for k, v := range old.byDevice {
			byDevice[k] = append([]graphDevice(nil), v...)
		}
	}
	for pages := 0; next != ""; pages++ {
		if pages > 100000 {
			return errors.New("graph: more than 100000 pages; giving up")
		}
		var page struct {
			Value    []graphManagedDevice `json:"value"`
			NextLink string               `json:"@odata.nextLink"`
		}
		if err := g.get(ctx, next, &page); err != nil {
			return err
		}
		for _, d := range page.Value {
			if d.EasDeviceID == "" {
				continue
			}
			gd := graphDevice{upn: d.UserPrincipalName, state: graphState(d.ComplianceState), access: d.ExchangeAccessState, os: d.OperatingSystem, ver: d.OSVersion}
			gd.lastSync, _ = time.Parse(time.RFC3339, d.LastSyncDateTime)
			key := strings.ToLower(d.EasDeviceID)
			list := byDevice[key]
			replaced := false
			for i := range list {
				if strings.EqualFold(list[i].upn, gd.upn) {
					list[i], replaced = gd, true
				}
			}
			if !replaced {
				list = append(list, gd)
			}
			byDevice[key] = list
		}
		next = page.NextLink
		if next != "" && !strings.HasPrefix(next, g.cfg.GraphURL+"/") {
			return fmt.Errorf("graph: @odata.nextLink points outside %s", g.cfg.GraphURL)
		}
	}
	t := &graphTable{byDevice: byDevice, at: started}
	for _, ds := range byDevice {
		t.entries += len(ds)
	}
	if !full {
		g.table.Store(t)
		g.lastSync.Store(started.UnixNano())
		return nil
	}
	return g.installFull(t)
}

// installFull applies a full sync's table, or holds it back.
func (g *Graph) installFull(t *graphTable) error {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	sum := t.digest()
	cur := g.table.Load()
	old := -1
	if cur != nil {
		old = cur.entries
	}
	by := ""
	if reason, drop := g.guard.g.check(old, t.entries, ""); reason != "" {
		ok, why := g.guard.accepted(sum)
		if !ok {
			if g.guard.held != nil && g.guard.heldSum == sum {
				g.heldTable = t // the same pull again: newer, not reported twice
				h := *g.guard.held
				return &h
			}
			g.heldTable = t
			h := &HeldBack{Reason: reason, Old: max(old, 0), New: t.entries, DropPercent: drop, Detail: why, Initial: cur == nil}
			g.guard.hold(h, sum, max(old, 0), g.inForceSum(cur))
			hc := *h
			return &hc
		}
		g.guard.consume(sum)
		by = EndedByAcceptFile
	}
	g.heldTable = nil
	g.table.Store(t)
	g.lastSync.Store(t.at.UnixNano())
	g.guard.end(by, t.entries, sum)
	return nil
}

func (g *Graph) inForceSum(t *graphTable) [32]byte {
	if t == nil {
		return [32]byte{}
	}
	return t.digest()
}

// digest names a table's content: the SHA-256 of its sorted entries, one
// "device id, user, state" line each. Two pulls with the same verdicts have
// the same digest, which is what an accept marker names.
func (t *graphTable) digest() [32]byte {
	lines := make([]string, 0, t.entries)
	for k, ds := range t.byDevice {
		for _, d := range ds {
			lines = append(lines, k+"\t"+strings.ToLower(d.upn)+"\t"+d.state.String()+"\n")
		}
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// graphState maps Intune's complianceState to a policy.State.
func graphState(s string) policy.State {
	switch s {
	case "compliant":
		return policy.StateCompliant
	case "inGracePeriod":
		return policy.StateGrace
	case "noncompliant", "conflict", "error":
		return policy.StateNoncompliant
	default: // unknown, configManager
		return policy.StateUnknown
	}
}

// get fetches one Graph URL as JSON, renewing the token on 401 once and
// honouring Retry-After on 429/503 (up to 5 attempts).
func (g *Graph) get(ctx context.Context, u string, into any) error {
	renewed := false
	for attempt := 0; ; attempt++ {
		tok, err := g.accessToken(ctx, false)
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		resp, err := g.client.Do(req)
		if err != nil {
			cancel()
			return fmt.Errorf("graph: %v", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		cancel()
		if err != nil {
			return fmt.Errorf("graph: reading %s: %v", req.URL.Path, err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			if err := json.Unmarshal(body, into); err != nil {
				return fmt.Errorf("graph: %s: %v", req.URL.Path, err)
			}
			return nil
		case resp.StatusCode == http.StatusUnauthorized && !renewed:
			renewed = true
			if _, err := g.accessToken(ctx, true); err != nil {
				return err
			}
			continue
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < 5:
			wait := retryAfter(resp.Header.Get("Retry-After"))
			if wait <= 0 {
				wait = time.Duration(1<<attempt) * time.Second
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		default:
			return fmt.Errorf("graph: %s answered %s", req.URL.Path, resp.Status)
		}
	}
}

// accessToken returns a cached OAuth2 client-credentials token, renewing it
// five minutes before it expires or when force is set.
func (g *Graph) accessToken(ctx context.Context, force bool) (string, error) {
	g.tokMu.Lock()
	defer g.tokMu.Unlock()
	if !force && g.token != "" && time.Now().Before(g.tokExp.Add(-5*time.Minute)) {
		return g.token, nil
	}
	tokenURL := g.cfg.AuthorityURL + "/" + url.PathEscape(g.cfg.TenantID) + "/oauth2/v2.0/token"
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {g.cfg.ClientID},
		"scope":      {g.cfg.GraphURL + "/.default"},
	}
	if g.cfg.ClientSecret != "" {
		form.Set("client_secret", g.cfg.ClientSecret)
	} else {
		a, err := clientAssertion(g.cfg.ClientID, tokenURL, g.cfg.Certificate, g.cfg.Key)
		if err != nil {
			return "", err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	}
	rctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := g.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("graph token: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		// The body of an error is an AAD error description; it carries no secret.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return "", fmt.Errorf("graph token: %s (%s)", resp.Status, e.Error)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", errors.New("graph token: the answer has no access_token")
	}
	g.token = tok.AccessToken
	g.tokExp = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	return g.token, nil
}

// clientAssertion builds the RS256 JWT that authenticates an app with a
// certificate credential (x5t is the certificate's SHA-1 thumbprint, as
// Microsoft's identity platform requires).
func clientAssertion(clientID, audience string, cert *x509.Certificate, key *rsa.PrivateKey) (string, error) {
	enc := base64.RawURLEncoding
	thumb := sha1.Sum(cert.Raw)
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": enc.EncodeToString(thumb[:])})
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"aud": audience, "iss": clientID, "sub": clientID,
		"jti": fmt.Sprintf("%x", jti), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("graph: signing the client assertion: %v", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

var _ policy.Source = (*Graph)(nil)
