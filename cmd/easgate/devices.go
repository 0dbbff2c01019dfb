package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/admin"
	"github.com/easgate/easgate/proxy/config"
	"github.com/easgate/easgate/proxy/quarantine"
)

// `easgate devices`, `easgate audit` and `easgate report`: clients of the
// admin API (proxy/admin). They talk to the running gateway (--admin URL
// --token-file F, or --config FILE, which names both); list, show and
// report also work on the state store, read-only, when no gateway answers,
// by running the same API code in this process.

func init() {
	commands["devices"] = command{"list | show | allow | block | quarantine | default | forget: the device inventory and admin actions", runDevices}
	commands["audit"] = command{"show the audit trail of admin actions", runAudit}
	commands["report"] = command{"impact report: what the running or a candidate policy does to every device seen", runReport}
}

const devicesUsage = `Usage: easgate devices <verb> [flags]

Verbs:
  list        list devices: [--state S] [--user U] [--q TEXT] [--seen-since DUR] [--client C] [--os OS] [--reason R] [--sort KEY] [--all]
  show        one device with the policy's evaluation: --user U --device-id D
  allow       allow a device (override): --user U --device-id D [--note TEXT] [--like OLD_DEVICE_ID]
  block       block a device (override)
  quarantine  quarantine a device (override)
  default     remove the override: the policy decides again
  forget      remove the device's record and override

The actions take --user U --device-id D, or --all-of-user U, or list's
filter flags; the last two act on many devices and take --dry-run.

Every verb takes --admin URL --token-file F, or --config FILE (which names
both), and --json or --csv.
`

// mgmtFlags are the flags every management command shares.
type mgmtFlags struct {
	admin, tokenFile, config string
	asJSON, asCSV            bool
}

func (m *mgmtFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.admin, "admin", "", "the gateway's admin URL (http://127.0.0.1:9090)")
	fs.StringVar(&m.tokenFile, "token-file", "", "file holding an admin token")
	fs.StringVar(&m.config, "config", "", "the gateway's config file: finds admin.address, a token and state.path")
	fs.BoolVar(&m.asJSON, "json", false, "print JSON")
	fs.BoolVar(&m.asCSV, "csv", false, "print CSV")
}

// apiClient sends API requests to the gateway, or serves them in this
// process on the state store (local).
type apiClient struct {
	base, token string
	local       *admin.API
	acc         *access.Access
}

func (c *apiClient) close() {
	if c.acc != nil {
		_ = c.acc.Close()
	}
}

// do sends one request and returns the status and body.
func (c *apiClient) do(method, path string, body []byte) (int, []byte, error) {
	if c.local != nil {
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(path)
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil) // in-process: no network peer
		if !c.local.Gate(&ctx) {
			return 0, nil, fmt.Errorf("%s is not an API path", path)
		}
		return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...), nil
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Timeout: 2 * time.Minute}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, b, err
}

// call is do that turns an API error into a Go error with its message.
func (c *apiClient) call(method, path string, body []byte) ([]byte, error) {
	code, b, err := c.do(method, path, body)
	if err != nil {
		return nil, err
	}
	if code >= 400 {
		var eb struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
			return nil, &exitError{code: 1, err: fmt.Errorf("%s (HTTP %d)", eb.Error.Message, code)}
		}
		return nil, &exitError{code: 1, err: fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(b))}
	}
	return b, nil
}

// connect finds the gateway. With readOnlyOK and --config, a gateway that
// does not answer is replaced by the API run here on the state store,
// read-only.
func connect(m *mgmtFlags, readOnlyOK bool, stderr io.Writer) (*apiClient, error) {
	c := &apiClient{base: strings.TrimRight(m.admin, "/")}
	var cfg *config.Config
	if m.config != "" {
		var err error
		if cfg, err = config.Load(m.config); err != nil {
			return nil, fmt.Errorf("%s: %w", m.config, err)
		}
		if c.base == "" && cfg.Admin.Address != "" {
			c.base = "http://" + dialable(cfg.Admin.Address)
		}
	}
	if m.tokenFile != "" {
		b, err := os.ReadFile(m.tokenFile)
		if err != nil {
			return nil, err
		}
		c.token = strings.TrimSpace(string(b))
	} else if cfg != nil {
		c.token = configToken(&cfg.Admin)
	}
	if c.base == "" && cfg == nil {
		return nil, &exitError{code: 2, err: errors.New("name the gateway: --admin URL [--token-file F], or --config FILE")}
	}
	if c.base != "" {
		if _, _, err := c.do("GET", "/healthz", nil); err == nil {
			return c, nil
		} else if !readOnlyOK || cfg == nil {
			return nil, fmt.Errorf("the gateway's admin API at %s does not answer: %w", c.base, err)
		}
	}
	if !readOnlyOK {
		return nil, errors.New("actions need the running gateway (admin.address)")
	}
	if cfg.State.Path == "" && cfg.State.URL == "" {
		return nil, errors.New("no gateway answers and state.path is empty: there is no inventory to read")
	}
	fmt.Fprintf(stderr, "easgate: no gateway answers at %s; reading %s read-only\n", c.base, stateName(&cfg.State)) // state.go
	acc, err := access.Build(cfg, zerolog.New(stderr).Level(zerolog.WarnLevel), access.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	if acc.Store == nil {
		_ = acc.Close()
		return nil, fmt.Errorf("state store %s not found", cfg.State.Path)
	}
	if acc.Devices, err = policy.OpenDevices(acc.Store, acc.Engine.CanonicalUser); err != nil {
		fmt.Fprintf(stderr, "easgate: some device records were skipped: %v\n", err)
	}
	// The quarantine records (entry time, notice delivered) are read from
	// the same store; an emulator that is never flushed writes nothing.
	q, err := quarantine.New(quarantine.Options{Store: acc.Store})
	if err != nil {
		_ = acc.Close()
		return nil, err
	}
	if err := q.Load(); err != nil {
		fmt.Fprintf(stderr, "easgate: some quarantine records were skipped: %v\n", err)
	}
	c.acc, c.local = acc, admin.New(localGateway{acc: acc, quar: q}, zerolog.Nop())
	return c, nil
}

// dialable turns a listen address into one to dial (":9090" and
// "0.0.0.0:9090" are reached on loopback).
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// configToken picks the strongest token the config names: token_file, or
// an admin, then operate, then read token.
func configToken(a *config.Admin) string {
	files := []string{a.TokenFile}
	for _, role := range []string{config.RoleAdmin, config.RoleOperate, config.RoleRead} {
		for _, t := range a.Tokens {
			if t.Role == role {
				files = append(files, t.File)
			}
		}
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		if b, err := os.ReadFile(f); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(bytes.TrimSpace(b))
		}
	}
	return ""
}

// localGateway serves the API on a read-only Access.
type localGateway struct {
	acc  *access.Access
	quar *quarantine.Emulator
}

func (g localGateway) Access() *access.Access { return g.acc }
func (g localGateway) Tokens() []admin.Token  { return nil }
func (g localGateway) Wake(string, string)    {}
func (g localGateway) Quarantine(user, device string) (admin.QuarantineInfo, bool) {
	rec, ok := g.quar.Get([]byte(user), []byte(device))
	if !ok {
		return admin.QuarantineInfo{}, false
	}
	return admin.QuarantineInfo{EnteredAt: rec.EnteredAt, NoticeDelivered: rec.NoticeDelivered}, true
}

// filterFlags are list's filter flags, shared by the bulk actions.
type filterFlags struct {
	state, user, q, seenSince, client, os, reason string
}

func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.state, "state", "", "allowed, blocked, quarantined or discovery")
	fs.StringVar(&f.user, "user", "", "user (any spelling: DOMAIN\\user, user@domain)")
	fs.StringVar(&f.q, "q", "", "free text: user, device id, type, model, name, OS, IMEI, phone number, User-Agent")
	fs.StringVar(&f.seenSince, "seen-since", "", "seen within this long (30d, 12h) or since an RFC 3339 time")
	fs.StringVar(&f.client, "client", "", "client family slug (ios-mail, outlook-mobile, gmail, ...)")
	fs.StringVar(&f.os, "os", "", "OS family or prefix of OS and version (iOS, \"Android 14\")")
	fs.StringVar(&f.reason, "reason", "", "a reason of the last decision (device-rule, admin-block, ...)")
}

func (f *filterFlags) query(v url.Values) {
	for k, s := range map[string]string{"state": f.state, "user": f.user, "q": f.q, "seen_since": f.seenSince,
		"client": f.client, "os": f.os, "reason": f.reason} {
		if s != "" {
			v.Set(k, s)
		}
	}
}

func (f *filterFlags) empty() bool { return *f == filterFlags{} }

func runDevices(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, devicesUsage)
		return &exitError{code: 2, err: errors.New("")}
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, devicesUsage)
		return errHelp
	case "list":
		return devicesList(rest, stdout, stderr)
	case "show":
		return devicesShow(rest, stdout, stderr)
	}
	for _, a := range admin.Actions {
		if verb == a {
			return devicesAct(verb, rest, stdout, stderr)
		}
	}
	fmt.Fprint(stderr, devicesUsage)
	return &exitError{code: 2, err: fmt.Errorf("unknown verb %q", verb)}
}

func devicesList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("devices list", "[filters] [--sort KEY] [--page-size N] [--all] [--admin URL --token-file F | --config FILE] [--json|--csv]", stderr)
	var m mgmtFlags
	var f filterFlags
	m.register(fs)
	f.register(fs)
	sortKey := fs.String("sort", "", "last_seen (default, newest first), first_seen, user, device_id, state; prefix - to reverse")
	size := fs.Int("page-size", admin.DefaultPageSize, "devices per page (at most 1000)")
	all := fs.Bool("all", false, "follow every page")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := connect(&m, true, stderr)
	if err != nil {
		return err
	}
	defer c.close()
	v := url.Values{}
	f.query(v)
	if *sortKey != "" {
		v.Set("sort", *sortKey)
	}
	v.Set("page_size", strconv.Itoa(*size))
	var devs []admin.DeviceView
	total := 0
	for {
		b, err := c.call("GET", "/api/v1/devices?"+v.Encode(), nil)
		if err != nil {
			return err
		}
		var l admin.DeviceList
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("the gateway's answer does not decode: %w", err)
		}
		devs, total = append(devs, l.Devices...), l.Total
		if !*all || l.NextPageToken == "" {
			break
		}
		v.Set("page_token", l.NextPageToken)
	}
	switch {
	case m.asJSON:
		return writeJSON(stdout, admin.DeviceList{Devices: devs, Total: total})
	case m.asCSV:
		_, err := stdout.Write(admin.DevicesCSV(devs))
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tDEVICE ID\tTYPE\tMODEL\tCLIENT\tOS\tSTATE\tREASONS\tOVERRIDE\tLAST SEEN")
	for _, d := range devs {
		ov := "-"
		if d.Override != nil {
			ov = d.Override.Action + " by " + d.Override.By
		}
		state := d.State
		if d.SuccessorOf != "" {
			state += " (successor of " + d.SuccessorOf + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.User, d.DeviceID, orDash(d.DeviceType), orDash(d.Info.Model),
			orDash(d.Client), orDash(strings.TrimSpace(d.OS+" "+d.OSVersion)), orDash(state), orDash(strings.Join(d.Reasons, ",")), ov,
			d.LastSeen.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d of %d devices\n", len(devs), total)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func devicePath(user, device string) string {
	return "/api/v1/devices/" + url.PathEscape(user) + "/" + url.PathEscape(device)
}

func devicesShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("devices show", "--user U --device-id D [--admin URL --token-file F | --config FILE] [--json]", stderr)
	var m mgmtFlags
	m.register(fs)
	user := fs.String("user", "", "the device's user")
	dev := fs.String("device-id", "", "the DeviceId")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *user == "" || *dev == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--user and --device-id are required")}
	}
	c, err := connect(&m, true, stderr)
	if err != nil {
		return err
	}
	defer c.close()
	b, err := c.call("GET", devicePath(*user, *dev), nil)
	if err != nil {
		return err
	}
	var d admin.DeviceDetail
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("the gateway's answer does not decode: %w", err)
	}
	if m.asJSON {
		return writeJSON(stdout, d)
	}
	if m.asCSV {
		_, err := stdout.Write(admin.DevicesCSV([]admin.DeviceView{d.Device}))
		return err
	}
	r := d.Device
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orDash(v)) }
	row("user", r.User)
	row("device id", r.DeviceID)
	row("device type", r.DeviceType)
	row("model", r.Info.Model)
	row("friendly name", r.Info.FriendlyName)
	row("OS", strings.TrimSpace(r.OS+" "+r.OSVersion)+" ("+r.Info.OS+")")
	row("IMEI", r.Info.IMEI)
	row("phone number", r.Info.PhoneNumber)
	row("client", r.Client)
	row("protocol", r.ProtocolVersion)
	row("user agent", r.UserAgent)
	row("first seen", r.FirstSeen.UTC().Format(time.RFC3339))
	row("last seen", r.LastSeen.UTC().Format(time.RFC3339))
	row("last command", r.LastCommand)
	addr := ""
	if r.LastAddress.IsValid() {
		addr = r.LastAddress.String()
	}
	row("last address", addr)
	row("node", r.Node)
	row("state", r.State+" "+strings.Join(r.Reasons, ","))
	row("rule", r.Rule)
	if r.VerdictState != "" {
		row("verdict", r.VerdictState+" from "+r.VerdictSource+" at "+r.VerdictFetched.UTC().Format(time.RFC3339))
	}
	if !r.QuarantinedAt.IsZero() {
		q := "since " + r.QuarantinedAt.UTC().Format(time.RFC3339)
		if r.Quarantine != nil {
			q += fmt.Sprintf(", notice delivered: %v", r.Quarantine.NoticeDelivered)
		}
		row("quarantine", q)
	}
	if r.Override != nil {
		row("override", fmt.Sprintf("%s by %s at %s: %s", r.Override.Action, r.Override.By, r.Override.At.UTC().Format(time.RFC3339), r.Override.Note))
	}
	row("successor of", r.SuccessorOf)
	row("certificate", r.CertFingerprint)
	for i, ua := range r.UserAgents {
		row("user agent #"+strconv.Itoa(i+1), ua.UserAgent+" since "+ua.First.UTC().Format(time.RFC3339))
	}
	row("decision now", d.Decision.State+" ("+d.Decision.Action+", "+strings.Join(d.Decision.Reasons, ",")+")")
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "evaluation:")
	for _, st := range d.Steps {
		mark := "  -"
		if st.Matched {
			mark = "  +"
		}
		fmt.Fprintf(stdout, "%s %s: %s\n", mark, st.Check, st.Detail)
	}
	return nil
}

func devicesAct(verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("devices "+verb, "(--user U --device-id D | --all-of-user U | filters) [--note TEXT] [--like OLD] [--dry-run] [--admin URL --token-file F | --config FILE] [--json]", stderr)
	var m mgmtFlags
	var f filterFlags
	m.register(fs)
	f.register(fs)
	dev := fs.String("device-id", "", "the DeviceId (with --user)")
	allOf := fs.String("all-of-user", "", "act on every device of this user")
	note := fs.String("note", "", "why (kept in the audit trail)")
	like := fs.String("like", "", "allow only: carry over the approval of this device of the same user (a wiped phone's old DeviceId)")
	dry := fs.Bool("dry-run", false, "with --all-of-user or filters: list the devices the action would touch, and do nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	one := *dev != ""
	if one && (*allOf != "" || f.state != "" || f.q != "" || f.seenSince != "" || f.client != "" || f.os != "" || f.reason != "") {
		return &exitError{code: 2, err: errors.New("--device-id acts on one device: do not combine it with --all-of-user or filters")}
	}
	if one && f.user == "" {
		return &exitError{code: 2, err: errors.New("--device-id needs --user")}
	}
	if !one && *allOf == "" && f.empty() {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("name a device (--user U --device-id D), a user (--all-of-user U) or a filter")}
	}
	if *like != "" && (!one || verb != admin.ActAllow) {
		return &exitError{code: 2, err: errors.New("--like goes with allow --user U --device-id NEW")}
	}
	c, err := connect(&m, false, stderr)
	if err != nil {
		return err
	}
	defer c.close()
	if one {
		if *dry {
			return &exitError{code: 2, err: errors.New("--dry-run is for --all-of-user and filters; `devices show` shows one device")}
		}
		body, _ := json.Marshal(map[string]string{"note": *note, "like": *like})
		b, err := c.call("POST", devicePath(f.user, *dev)+"/"+verb, body)
		if err != nil {
			return err
		}
		var e policy.AuditEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("the gateway's answer does not decode: %w", err)
		}
		if m.asJSON {
			return writeJSON(stdout, e)
		}
		fmt.Fprintf(stdout, "%s %s of %s: %s -> %s (audit #%d)\n", verb, e.DeviceID, e.User, e.Before, e.After, e.Seq)
		return nil
	}
	bf := admin.BulkFilter{User: f.user, State: f.state, Reason: f.reason, Client: f.client, OS: f.os, SeenSince: f.seenSince, Q: f.q}
	if *allOf != "" {
		bf.User = *allOf
	}
	body, _ := json.Marshal(admin.BulkRequest{Filter: bf, Action: verb, DryRun: *dry, Note: *note})
	b, err := c.call("POST", "/api/v1/devices:bulk", body)
	if err != nil {
		return err
	}
	var res admin.BulkResult
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("the gateway's answer does not decode: %w", err)
	}
	if m.asJSON {
		return writeJSON(stdout, res)
	}
	if res.DryRun {
		fmt.Fprintf(stdout, "dry run: %s would touch %d device(s):\n", verb, res.Matched)
	} else {
		fmt.Fprintf(stdout, "%s: %d device(s) matched, %d done:\n", verb, res.Matched, len(res.Applied))
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	for _, d := range res.Devices {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.User, d.DeviceID, d.State)
	}
	return tw.Flush()
}

func runAudit(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", "[--user U] [--device-id D] [--actor NAME] [--since DUR] [--limit N] [--admin URL --token-file F | --config FILE] [--json|--csv]", stderr)
	var m mgmtFlags
	m.register(fs)
	user := fs.String("user", "", "only this user's devices")
	dev := fs.String("device-id", "", "only this device")
	actor := fs.String("actor", "", "only actions of this token or certificate")
	since := fs.String("since", "", "only since (30d, 12h, RFC 3339)")
	limit := fs.Int("limit", admin.DefaultPageSize, "the newest N entries (at most 1000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := connect(&m, true, stderr) // the trail can be read from the store too
	if err != nil {
		return err
	}
	defer c.close()
	v := url.Values{"page_size": {strconv.Itoa(*limit)}}
	for k, s := range map[string]string{"user": *user, "device_id": *dev, "actor": *actor, "since": *since} {
		if s != "" {
			v.Set(k, s)
		}
	}
	b, err := c.call("GET", "/api/v1/audit?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	var l admin.AuditList
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("the gateway's answer does not decode: %w", err)
	}
	switch {
	case m.asJSON:
		return writeJSON(stdout, l)
	case m.asCSV:
		_, err := stdout.Write(admin.AuditCSV(l.Entries))
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTIME\tACTOR\tACTION\tUSER\tDEVICE ID\tBEFORE\tAFTER\tNOTE")
	for _, e := range l.Entries {
		act := e.Action
		if e.Like != "" {
			act += " like " + e.Like
		}
		if e.Bulk {
			act += " (bulk)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Actor, act, e.User, e.DeviceID,
			e.Before, e.After, orDash(e.Note))
	}
	return tw.Flush()
}

func runReport(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "[--candidate FILE] [--since 30d] [--admin URL --token-file F | --config FILE] [--json|--csv]", stderr)
	var m mgmtFlags
	m.register(fs)
	candidate := fs.String("candidate", "", "a candidate config: evaluate its policy instead of the running one")
	since := fs.String("since", "30d", "devices seen within this long (30d, 12h) or since an RFC 3339 time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var rep admin.Report
	if *candidate != "" {
		r, err := candidateReport(&m, *candidate, *since, stderr)
		if err != nil {
			return err
		}
		rep = r
	} else {
		c, err := connect(&m, true, stderr)
		if err != nil {
			return err
		}
		defer c.close()
		format := "json"
		if m.asCSV {
			format = "csv"
		}
		b, err := c.call("GET", "/api/v1/report?"+url.Values{"since": {*since}, "format": {format}}.Encode(), nil)
		if err != nil {
			return err
		}
		if m.asCSV {
			_, err := stdout.Write(b)
			return err
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("the gateway's answer does not decode: %w", err)
		}
	}
	switch {
	case m.asJSON:
		return writeJSON(stdout, rep)
	case m.asCSV:
		_, err := stdout.Write(rep.CSV())
		return err
	}
	printReport(stdout, &rep)
	return nil
}

// candidateReport evaluates a candidate config's policy, in this process,
// against the devices the running gateway knows (over the admin API) or,
// when none answers, those in the state store (that of --config, else the
// candidate's state.path).
func candidateReport(m *mgmtFlags, path, sinceArg string, stderr io.Writer) (admin.Report, error) {
	var devs *policy.Devices
	if m.admin != "" || m.config != "" {
		c, err := connect(m, true, stderr)
		if err != nil {
			return admin.Report{}, err
		}
		defer c.close()
		if c.local == nil {
			if devs, err = fetchDevices(c); err != nil {
				return admin.Report{}, err
			}
		}
	}
	cand, err := config.Load(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e.Error())
			}
		}
		return admin.Report{}, &exitError{code: 1, err: fmt.Errorf("%s: the candidate does not validate", path)}
	}
	if m.config != "" {
		cur, err := config.Load(m.config)
		if err != nil {
			return admin.Report{}, fmt.Errorf("%s: %w", m.config, err)
		}
		cand.State = cur.State
	}
	if cand.State.Path == "" && cand.State.URL == "" && devs == nil {
		return admin.Report{}, errors.New("no state.path: there are no devices to evaluate")
	}
	acc, err := access.Build(cand, zerolog.New(stderr).Level(zerolog.WarnLevel), access.Options{ReadOnly: true})
	if err != nil {
		return admin.Report{}, err
	}
	defer acc.Close()
	if devs == nil {
		if acc.Store == nil {
			return admin.Report{}, fmt.Errorf("state store %s not found", cand.State.Path)
		}
		if devs, err = policy.OpenDevices(acc.Store, acc.Engine.CanonicalUser); err != nil {
			fmt.Fprintf(stderr, "easgate: some device records were skipped: %v\n", err)
		}
	}
	now := time.Now()
	since, err := admin.ParseSince(sinceArg, now)
	if err != nil {
		return admin.Report{}, &exitError{code: 2, err: fmt.Errorf("--since %v", err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return admin.BuildReport(ctx, acc.Engine, acc.Rules, devs, since, now), nil
}

func printReport(w io.Writer, r *admin.Report) {
	fmt.Fprintf(w, "impact report: %d devices of %d users seen since %s, policy mode %s\n", r.Devices, r.Users, r.Since.Format(time.RFC3339), r.Mode)
	section := func(title string, m map[string]int) {
		fmt.Fprintf(w, "\n%s:\n", title)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		for _, k := range sortedKeys(m) {
			fmt.Fprintf(tw, "  %s\t%d\n", orDash(k), m[k])
		}
		_ = tw.Flush()
	}
	section("by state (what the gateway would apply)", r.ByState)
	section("by action (as if enforced)", r.ByAction)
	section("by reason", r.ByReason)
	section("by client", r.ByClient)
	section("by OS version", r.ByOS)
	fmt.Fprintf(w, "\nwould change: %d device(s) of %d user(s)\n", len(r.Changes), len(r.UsersChanged))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, c := range r.Changes {
		fmt.Fprintf(tw, "  %s\t%s\t%s -> %s\t%s\t%s\n", c.User, c.DeviceID, c.Current, c.State, strings.Join(c.Reasons, ","), c.Rule)
	}
	_ = tw.Flush()
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Largest first, then by name.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && (m[keys[j]] > m[keys[j-1]] || m[keys[j]] == m[keys[j-1]] && keys[j] < keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// fetchDevices reads every device of the running gateway, page by page.
func fetchDevices(c *apiClient) (*policy.Devices, error) {
	devs := policy.NewDevices(nil)
	v := url.Values{"page_size": {strconv.Itoa(admin.MaxPageSize)}}
	for {
		b, err := c.call("GET", "/api/v1/devices?"+v.Encode(), nil)
		if err != nil {
			return nil, err
		}
		var l admin.DeviceList
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("the gateway's answer does not decode: %w", err)
		}
		for _, d := range l.Devices {
			devs.Put(d.DeviceRecord)
		}
		if l.NextPageToken == "" {
			return devs, nil
		}
		v.Set("page_token", l.NextPageToken)
	}
}
