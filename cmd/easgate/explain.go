package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
)

// explainOutput is what `easgate explain --json` prints.
type explainOutput struct {
	Action         string        `json:"action"`
	Enforced       bool          `json:"enforced"`
	Rule           string        `json:"rule,omitempty"`
	Reasons        []string      `json:"reasons"`
	ReportedRule   string        `json:"reported_rule,omitempty"`
	ReportedAction string        `json:"reported_action,omitempty"`
	Verdict        *verdictOut   `json:"verdict,omitempty"`
	Client         eas.Client    `json:"client"`
	Device         *deviceOut    `json:"device,omitempty"`
	Steps          []policy.Step `json:"steps"`
}

type verdictOut struct {
	State  string `json:"state"`
	Source string `json:"source"`
	Age    string `json:"age"`
	Stale  bool   `json:"stale,omitempty"`
}

type deviceOut struct {
	FirstSeen time.Time      `json:"first_seen"`
	LastSeen  time.Time      `json:"last_seen"`
	Info      eas.DeviceInfo `json:"info"`
}

func runExplain(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("explain", "--config FILE --user U --device-id D [--device-type T] [--user-agent UA] [--os OS] [--model M] [--auth basic|certificate|both|none] [--json]", stderr)
	cfgPath := fs.String("config", "", "the gateway's config file")
	user := fs.String("user", "", "EAS user (DOMAIN\\user, user@domain or user)")
	devID := fs.String("device-id", "", "EAS DeviceId")
	devType := fs.String("device-type", "", "EAS DeviceType")
	ua := fs.String("user-agent", "", "User-Agent")
	osName := fs.String("os", "", "DeviceInformation OS (default: what the state store recorded)")
	model := fs.String("model", "", "DeviceInformation Model (default: what the state store recorded)")
	auth := fs.String("auth", "basic", "how the phone authenticates: basic, certificate, both or none")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" || *user == "" || *devID == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--config, --user and --device-id are required")}
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return err
	}
	// Read-only: the gateway may be running on the same state store; explain
	// never writes it and starts no background work (no file watch, no
	// Graph sync loop).
	a, err := access.Build(cfg, zerolog.New(stderr).Level(zerolog.WarnLevel), access.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer a.Close()

	s := &policy.Subject{User: []byte(*user), DeviceID: []byte(*devID), DeviceType: []byte(*devType), UserAgent: []byte(*ua), Now: time.Now()}
	switch *auth {
	case "basic":
		s.Auth = policy.AuthBasic
	case "certificate":
		s.Auth = policy.AuthCertificate
	case "both":
		s.Auth = policy.AuthBoth
	case "none":
		s.Auth = policy.AuthNone
	default:
		return &exitError{code: 2, err: fmt.Errorf("--auth %q: want basic, certificate, both or none", *auth)}
	}
	info := &eas.DeviceInfo{}
	var dev *deviceOut
	if a.Store != nil {
		// The gateway stores a device under its user's canonical name
		// (auth.domains): "CORP\alice" finds alice@corp.example.com's phone.
		lookup := *user
		if c, err := a.Engine.CanonicalUser(*user); err == nil {
			lookup = c
		}
		rec, ok, err := policy.LoadDevice(a.Store, lookup, *devID)
		if err != nil {
			return err
		}
		if ok {
			*info = rec.Info
			s.FirstSeen = rec.FirstSeen
			if len(s.UserAgent) == 0 {
				s.UserAgent = []byte(rec.UserAgent)
			}
			if len(s.DeviceType) == 0 {
				s.DeviceType = []byte(rec.DeviceType)
			}
			dev = &deviceOut{FirstSeen: rec.FirstSeen, LastSeen: rec.LastSeen, Info: rec.Info}
		}
	}
	if *osName != "" {
		info.OS = *osName
	}
	if *model != "" {
		info.Model = *model
	}
	s.Info = info
	// The gateway identifies with the configured rules (identify.rules_file).
	rules, rerrs := cfg.IdentifyRules()
	if rerrs != nil {
		for _, e := range rerrs {
			fmt.Fprintln(stderr, e.Error())
		}
		return &exitError{code: 1, err: fmt.Errorf("%s: %d error(s)", *cfgPath, len(rerrs))}
	}
	s.Client = rules.Identify(s.UserAgent, s.DeviceType, info)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, steps := a.Explain(ctx, s)
	out := explainOutput{
		Action: d.Action.String(), Enforced: d.Enforced, Rule: d.Rule, ReportedRule: d.ReportedRule,
		Client: s.Client, Device: dev, Steps: steps, Reasons: []string{},
	}
	if d.ReportedRule != "" {
		out.ReportedAction = d.ReportedAction.String()
	}
	for _, r := range d.Reasons() {
		out.Reasons = append(out.Reasons, r.String())
	}
	if d.Verdict.Valid {
		out.Verdict = &verdictOut{State: d.Verdict.State.String(), Source: d.Verdict.Source, Age: d.VerdictAge.Round(time.Second).String(), Stale: d.Verdict.Stale}
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	enforced := "enforced"
	if !d.Enforced {
		enforced = "report only: the gateway forwards the request"
	}
	fmt.Fprintf(stdout, "decision: %s (%s)\n", out.Action, enforced)
	if out.Rule != "" {
		fmt.Fprintf(stdout, "rule:     %s\n", out.Rule)
	}
	fmt.Fprintf(stdout, "reasons:  %s\n", strings.Join(out.Reasons, ", "))
	if out.ReportedRule != "" {
		fmt.Fprintf(stdout, "reported: rule %s would %s\n", out.ReportedRule, out.ReportedAction)
	}
	if out.Verdict != nil {
		fmt.Fprintf(stdout, "verdict:  %s from %s, %s old", out.Verdict.State, out.Verdict.Source, out.Verdict.Age)
		if out.Verdict.Stale {
			fmt.Fprint(stdout, " (stale: the source is failing)")
		}
		fmt.Fprintln(stdout)
	}
	cj, _ := s.Client.MarshalJSON()
	fmt.Fprintf(stdout, "client:   %s\n", cj)
	if dev != nil {
		fmt.Fprintf(stdout, "device:   first seen %s, last seen %s\n", dev.FirstSeen.Format(time.RFC3339), dev.LastSeen.Format(time.RFC3339))
	} else {
		fmt.Fprintln(stdout, "device:   not in the state store (never seen, or no state.path)")
	}
	fmt.Fprintln(stdout, "evaluation:")
	for _, st := range steps {
		mark := "  -"
		if st.Matched {
			mark = "  +"
		}
		fmt.Fprintf(stdout, "%s %s: %s\n", mark, st.Check, st.Detail)
	}
	return nil
}
