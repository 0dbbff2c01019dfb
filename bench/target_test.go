package bench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNormalizeTarget(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "https://127.0.0.1:8443", want: "https://127.0.0.1:8443"},
		{in: "https://127.0.0.1:8443/", want: "https://127.0.0.1:8443"},
		{in: "https://mail.example.com/Microsoft-Server-ActiveSync", want: "https://mail.example.com"},
		{in: "https://mail.example.com/microsoft-server-activesync/", want: "https://mail.example.com"},
		{in: "http://127.0.0.1:8080/Microsoft-Server-ActiveSync?Cmd=Ping", want: "http://127.0.0.1:8080"},
		{in: " https://[::1]:8443 ", want: "https://[::1]:8443"},
		{in: "127.0.0.1:8443", err: "give an http:// or https:// URL"},
		{in: "https://mail.example.com/owa", err: `path "/owa": give the gateway's base URL (https://mail.example.com) or its EAS URL (https://mail.example.com/Microsoft-Server-ActiveSync)`},
		{in: "https:///Microsoft-Server-ActiveSync", err: "no host"},
		{in: "https://u:pw@mail.example.com", err: "--password"},
	} {
		got, err := NormalizeTarget(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %q, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestDefaultRamp(t *testing.T) {
	if got := DefaultRamp(30*time.Second, 295*time.Second, 1); got != 7500*time.Millisecond {
		t.Errorf("30s run, 295s heartbeat: ramp %s, want 7.5s", got)
	}
	if got := DefaultRamp(30*time.Minute, 295*time.Second, 1); got != 295*time.Second {
		t.Errorf("30m run: ramp %s, want one heartbeat (295s)", got)
	}
	if got := DefaultRamp(20*time.Second, 120*time.Second, 60); got != 2*time.Second {
		t.Errorf("time scale 60: ramp %s, want the scaled heartbeat (2s)", got)
	}
}

func TestIsEmulatedSyncKey(t *testing.T) {
	for k, want := range map[string]bool{
		"Q0123456789ab-1": true, "Qdeadbeef0000-12345": true,
		"1": false, "{8F3E...}1": false, "Q0123456789ab-": false, "Q0123456789AB-1": false,
		"Q0123456789ab1": false, "Q0123456789ab-1x": false, "": false,
	} {
		if got := IsEmulatedSyncKey(k); got != want {
			t.Errorf("IsEmulatedSyncKey(%q) = %v", k, got)
		}
	}
}

// TestPolicyAnswersAreNotErrors: blocked and denied answers are counted
// apart; the device's Decision follows what the answers said.
func TestPolicyAnswersAreNotErrors(t *testing.T) {
	r := NewRecorder(time.Now(), time.Second)
	r.Record(Sample{Command: "Provision", Start: time.Now(), Duration: time.Millisecond, Status: 200})
	r.RecordError("Provision", ErrorKind(statusError("Provision", "Status", 129)), "Status 129")
	r.RecordError("SendMail", ErrorKind(statusError("SendMail", "Status", 130)), "Status 130")
	r.RecordError("Sync", ErrorKind(statusError("Sync", "Status", 4)), "Status 4")
	f := &fleet{rec: r, cfg: RunConfig{Devices: 3}}
	for _, dec := range []string{DecisionBlocked, DecisionQuarantined, ""} {
		f.noteDecision(&Device{decision: dec})
	}
	rep := f.report(time.Second, &runProcs{})
	if rep.Errors != 1 || rep.ErrorKinds["protocol"] != 1 || rep.ErrorKinds[KindBlocked] != 0 {
		t.Errorf("errors %d %v, want only the protocol error", rep.Errors, rep.ErrorKinds)
	}
	if rep.PolicyAnswers[KindBlocked] != 1 || rep.PolicyAnswers[KindDenied] != 1 {
		t.Errorf("policy answers %v", rep.PolicyAnswers)
	}
	if c := rep.Commands["Provision"]; c.Errors != 0 || c.Refused != 1 {
		t.Errorf("Provision row %+v: want 0 errors, 1 refused", c)
	}
	if d := rep.Decisions; d == nil || d.Blocked != 1 || d.Quarantined != 1 || d.Unknown != 1 || d.Allowed != 0 {
		t.Fatalf("decisions %+v", rep.Decisions)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"gateway decisions for the fleet (from its answers): allowed 0  quarantined 1  blocked 1  unknown 1",
		"warning: 2 of 3 devices (67%) were not forwarded to the CAS (1 quarantined, 1 blocked)",
		"policy answers (the gateway's decisions, not errors): blocked 1 (Status 129 and other access statuses)  denied 1 (Status 130",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	// Half the fleet forwarded: no warning.
	rep.Decisions = &FleetDecisions{Allowed: 2, Quarantined: 1, Blocked: 1}
	rep.Devices = 4
	if w := rep.NotForwardedWarning(); w != "" {
		t.Errorf("half forwarded: warning %q", w)
	}

	d := &Device{}
	d.NoteRefusal(statusError("Provision", "Status", 129))
	if d.Decision() != DecisionBlocked {
		t.Errorf("after Status 129: %q", d.Decision())
	}
	d.NoteRefusal(statusError("SendMail", "Status", 130))
	if d.Decision() != DecisionQuarantined {
		t.Errorf("after Status 130: %q", d.Decision())
	}
	d.NoteRefusal(errors.New("connection reset"))
	if d.Decision() != DecisionQuarantined {
		t.Errorf("an I/O error changed the decision: %q", d.Decision())
	}
}
