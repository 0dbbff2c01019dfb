package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/proxy"
)

// demoConfig is the gateway config the demo runs with: plain HTTP on
// loopback in front of the fake CAS, a compliance file, and the rules of
// examples/easgate.yaml in miniature.
const demoConfig = `# written by easgate demo
listen:
  address: "127.0.0.1:0"
  plain_http: true
upstreams:
  servers:
    - url: %s
  health_check:
    interval: 2s
    timeout: 1s
  timeouts:
    long_poll_max: 120s
policy:
  mode: enforce
  default_access: quarantine
  discovery_period: 0s
  rules:
    - name: block-old-ios
      match: {os_family: iOS, os_version_below: "16.0"}
      access: block
    - name: outlook-mobile
      match: {client: outlook-mobile}
      access: allow
  compliance:
    require_for: [all]
    source:
      type: file
      path: %s
    cache:
      on_unavailable: quarantine
  quarantine:
    notice:
      from: "IT Service Desk <it@demo.example>"
      subject: "` + demoNoticeSubject + `"
      enroll_url: https://portal.demo.example/enroll
state:
  path: %s
admin:
  address: "127.0.0.1:0"
log:
  level: warn
  access_log: %s
`

// demoNoticeSubject is the quarantine notice's subject: the demo tells the
// notice from Exchange's mail by it.
const demoNoticeSubject = "Your device must be enrolled before it can sync mail"

type demoPhone struct {
	label    string
	profile  string
	user     string
	deviceID string
	ua       string // overrides the profile's User-Agent (an old iPhone)
	osName   string
	version  eas.Version
}

func runDemo(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[--keep DIR]", stderr)
	keep := fs.String("keep", "", "write the demo's config, state and access log to DIR and keep them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir := *keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "easgate-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}

	// 1. A fake Exchange CAS with a mailbox of 12 messages per user.
	cas := bench.NewFakeCAS(bench.FakeCASConfig{Messages: 12, TimeScale: 60,
		Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}})
	casLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go cas.Serve(casLn)
	defer cas.Close()

	// 2. The gateway, with a compliance file that knows alice's iPhone.
	phones := []demoPhone{
		{label: "iPhone (iOS 17, enrolled and compliant)", profile: "ios", user: "alice@demo.example", deviceID: "ApplF17XK2Q8N0PA"},
		{label: "Android phone with Gmail (not enrolled)", profile: "gmail", user: "bob@demo.example", deviceID: "androidc1957925943"},
		{label: "Outlook for iOS and Android", profile: "outlook", user: "carol@demo.example", deviceID: "BF36923991ADFBA9C0FFEE0123456789"},
		{label: "old iPhone (iOS 6.1.3)", profile: "ios", user: "dave@demo.example", deviceID: "ApplC39GQ8NNDTDL",
			ua: "Apple-iPhone4C1/1002.329", osName: "iOS 6.1.3 10B329", version: eas.V141},
	}
	csvPath := filepath.Join(dir, "compliance.csv")
	csv := "user,device_id,state\n" + phones[0].user + "," + phones[0].deviceID + ",compliant\n" +
		phones[2].user + "," + phones[2].deviceID + ",compliant\n"
	if err := os.WriteFile(csvPath, []byte(csv), 0o600); err != nil {
		return err
	}
	accessPath := filepath.Join(dir, "access.log")
	cfgPath := filepath.Join(dir, "easgate.yaml")
	text := fmt.Sprintf(demoConfig, "http://"+casLn.Addr().String(), csvPath, filepath.Join(dir, "state.db"), accessPath)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		return err
	}
	cfg, err := loadConfig(cfgPath, stderr)
	if err != nil {
		return err
	}
	srv, err := proxy.New(cfg, newLogger(cfg.Log, stderr))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	target := "http://" + ln.Addr().String()
	if err := waitReady(srv, 10*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "easgate demo: fake Exchange CAS on %s, easgate on %s\n", casLn.Addr(), target)
	fmt.Fprintf(stdout, "config: %s\n\n", cfgPath)

	// 3. Each phone runs the real client life cycle through the gateway.
	for _, p := range phones {
		prof := bench.Profiles[p.profile]
		if p.ua != "" {
			prof.UserAgent, prof.Info.UserAgent = p.ua, p.ua
		}
		if p.osName != "" {
			prof.Info.OS = p.osName
			prof.Info.Model = "iPhone4C1"
		}
		if p.version != 0 {
			prof.Version = p.version
		}
		name, _, _ := strings.Cut(p.user, "@")
		dev := bench.NewDevice(bench.DeviceConfig{Target: target, User: p.user, Password: name + "-pw",
			DeviceID: p.deviceID, Profile: prof, Timeout: 20 * time.Second, TimeScale: 60})
		c := eas.Identify([]byte(prof.UserAgent), []byte(prof.DeviceType), &prof.Info)
		cj, _ := c.MarshalJSON()
		fmt.Fprintf(stdout, "== %s\n   user %s, device %s (%s), protocol %s\n   identified as %s\n",
			p.label, p.user, p.deviceID, prof.DeviceType, prof.Version, cj)
		runPhone(stdout, dev)
		fmt.Fprintln(stdout)
	}

	// 4. What the gateway decided, from its access log.
	time.Sleep(500 * time.Millisecond) // the access log is flushed every 200 ms
	fmt.Fprintln(stdout, "== gateway decisions (from the access log)")
	return printDecisions(stdout, accessPath)
}

// runPhone runs the life cycle step by step and prints each outcome in
// words: the Ping status, and which message is easgate's quarantine notice.
func runPhone(w io.Writer, d *bench.Device) {
	notice := false
	steps := []struct {
		name string
		fn   func() (string, error)
	}{
		{"OPTIONS", func() (string, error) { return "ok", d.Options() }},
		{"Provision", func() (string, error) {
			err := d.Provision()
			return fmt.Sprintf("policy key %d", d.PolicyKey()), err
		}},
		{"Settings", func() (string, error) { return "device information sent", d.Settings() }},
		{"FolderSync", func() (string, error) {
			err := d.FolderSync()
			return fmt.Sprintf("%d folders, Inbox %q", len(d.Folders), d.InboxID), err
		}},
		{"Sync Inbox", func() (string, error) {
			if d.InboxID == "" {
				return "", errors.New("no Inbox known (FolderSync failed)")
			}
			n, err := d.SyncAll(d.InboxID)
			if err != nil {
				return "", err
			}
			if n == 1 && d.LastSubject == demoNoticeSubject {
				notice = true
				return fmt.Sprintf("1 message: easgate's quarantine notice %q (the mailbox's own mail is not synced)", d.LastSubject), nil
			}
			return plural(n, "message") + " from Exchange", nil
		}},
		{"Ping", func() (string, error) {
			st, folders, err := d.Ping(120)
			return pingOutcome(st, folders, d.InboxID, notice), err
		}},
	}
	for _, s := range steps {
		out, err := s.fn()
		if err != nil {
			fmt.Fprintf(w, "   %-11s %s\n", s.name, demoError(err))
			continue
		}
		fmt.Fprintf(w, "   %-11s %s\n", s.name, out)
	}
}

// pingOutcome says what a Ping answer means for the phone.
func pingOutcome(status int, folders []string, inbox string, notice bool) string {
	switch status {
	case 1:
		return "Status 1: no changes during the heartbeat"
	case 2:
		where := "folders " + strings.Join(folders, ", ")
		if len(folders) == 1 && folders[0] == inbox {
			where = "the Inbox (" + inbox + ")"
		}
		if notice {
			return "Status 2: changes in " + where + ": the quarantine notice stays new until the phone acknowledges it"
		}
		return "Status 2: changes in " + where + ": the phone syncs them next"
	}
	return fmt.Sprintf("Status %d %v", status, folders)
}

// demoError says what an error answer means; Status 129 is how Exchange
// (and easgate) tell a phone that it is not allowed.
func demoError(err error) string {
	if strings.Contains(err.Error(), "Status 129") {
		return "blocked: Status 129, the answer Exchange gives a device that is not allowed to sync"
	}
	return err.Error()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func waitReady(srv *proxy.Server, within time.Duration) error {
	deadline := time.Now().Add(within)
	for !srv.Ready() {
		if time.Now().After(deadline) {
			return errors.New("the gateway found no healthy CAS")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// printDecisions summarises the access log: per device, the decisions and
// the HTTP statuses the phone got.
func printDecisions(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	type key struct{ user, device string }
	type agg struct {
		decisions map[string]int
		reasons   map[string]bool
		statuses  map[int]int
	}
	order := []key{}
	seen := map[key]*agg{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			User     string   `json:"user"`
			Device   string   `json:"device_id"`
			Decision string   `json:"decision"`
			Reasons  []string `json:"reasons"`
			Status   int      `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Device == "" {
			continue
		}
		k := key{line.User, line.Device}
		a := seen[k]
		if a == nil {
			a = &agg{decisions: map[string]int{}, reasons: map[string]bool{}, statuses: map[int]int{}}
			seen[k] = a
			order = append(order, k)
		}
		a.decisions[line.Decision]++
		for _, r := range line.Reasons {
			a.reasons[r] = true
		}
		a.statuses[line.Status]++
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   USER\tDEVICE\tDECISION\tREQUESTS\tHTTP STATUS\tREASONS")
	for _, k := range order {
		a := seen[k]
		n := 0
		for _, c := range a.decisions {
			n += c
		}
		reasons := make([]string, 0, len(a.reasons))
		for r := range a.reasons {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%d\t%s\t%s\n", k.user, k.device, countList(a.decisions), n,
			countList(a.statuses), strings.Join(reasons, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return sc.Err()
}

// countList prints counts as "allow" (one value, every request) or
// "allow 3, quarantine 4", sorted by value.
func countList[K comparable](m map[K]int) string {
	keys := make([]string, 0, len(m))
	byName := map[string]int{}
	for k, c := range m {
		name := fmt.Sprint(k)
		keys = append(keys, name)
		byName[name] = c
	}
	sort.Strings(keys)
	if len(keys) == 1 {
		return keys[0]
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, byName[k])
	}
	return strings.Join(parts, ", ")
}
