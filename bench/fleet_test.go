package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestRunAgainstFakeCAS drives a small fleet (every client profile) for
// about 2 s of wall time (time-scaled) and checks that it ran every
// command without a protocol error.
func TestRunAgainstFakeCAS(t *testing.T) {
	cas := NewFakeCAS(FakeCASConfig{Messages: 30, MessageSize: 400, AttachmentSize: 20000,
		PingChangeEvery: 60 * time.Second, TimeScale: 300})
	url := startCAS(t, cas)
	var progress bytes.Buffer
	rep, err := Run(RunConfig{
		Target: url, Devices: 10, Duration: 2 * time.Second, Ramp: 200 * time.Millisecond,
		Heartbeat: 300 * time.Second, TimeScale: 300, Password: "pw",
		SendMailRate: 1, AttachmentRate: 1, SendAttachmentSize: 5000, VerifyContent: true,
		Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.ProtocolErrors(); n != 0 {
		t.Errorf("%d protocol errors: %v", n, rep.ErrorExamples)
	}
	if rep.Errors != 0 {
		t.Errorf("errors: %v %v", rep.ErrorKinds, rep.ErrorExamples)
	}
	if rep.DevicesSetUp < 10 {
		t.Errorf("devices set up = %d, want 10", rep.DevicesSetUp)
	}
	for _, cmd := range []string{"OPTIONS", "Provision", "Settings", "FolderSync", "Sync", "Ping", "ItemOperations", "SendMail"} {
		if rep.Commands[cmd].Count == 0 {
			t.Errorf("command %s never ran: %+v", cmd, rep.Commands)
		}
	}
	s := cas.Stats()
	if s.Panics != 0 || s.BadRequests != 0 {
		t.Errorf("fake CAS stats: %+v", s)
	}
	if s.SendMail != rep.Commands["SendMail"].Count {
		t.Errorf("CAS counted %d SendMail, fleet %d", s.SendMail, rep.Commands["SendMail"].Count)
	}
	if rep.HeldPingsMax < 1 {
		t.Errorf("no Ping was ever held")
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Provision", "Ping (held: ms until answered)", "p99.9 ms"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if !strings.Contains(progress.String(), "requests=") && rep.DurationS > 10 {
		t.Errorf("no progress line")
	}
	var back map[string]any
	reportJSON(t, rep, &back)
	t.Logf("\n%s", text.String())
}

// TestRunCountsRefusedCredentials: a fleet whose password the CAS refuses
// must report the 401s as errors (so --fail-on-error fails), not retry
// silently with errors at zero.
func TestRunCountsRefusedCredentials(t *testing.T) {
	cas := NewFakeCAS(FakeCASConfig{Messages: 5, TimeScale: 300, Users: map[string]string{"u0000": "right"}})
	url := startCAS(t, cas)
	rep, err := Run(RunConfig{
		Target: url, Devices: 2, Duration: 500 * time.Millisecond, Heartbeat: 300 * time.Second,
		TimeScale: 300, Password: "wrong", UserPrefix: "u",
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors == 0 || rep.ErrorKinds["http_401"] == 0 {
		t.Fatalf("a refused password gave errors=%d kinds=%v, want http_401 errors", rep.Errors, rep.ErrorKinds)
	}
	if cas.Stats().AuthFailures == 0 {
		t.Fatal("the fake CAS never refused a password")
	}
}
