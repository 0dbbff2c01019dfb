package bench

import (
	"net"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
)

// startCAS serves f on 127.0.0.1 and returns its base URL.
func startCAS(t testing.TB, f *FakeCAS) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Serve(ln) }()
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return "http://" + ln.Addr().String()
}

func testProfile(version eas.Version, base64 bool) Profile {
	p := Profiles["ios"]
	p.Version = version
	p.Base64 = base64
	return p
}

func TestFakeCASLifeCycle(t *testing.T) {
	cases := []struct {
		name    string
		version eas.Version
		base64  bool
	}{
		{"12.1 plain", eas.V121, false},
		{"12.1 base64", eas.V121, true},
		{"14.0 plain", eas.V140, false},
		{"14.0 base64", eas.V140, true},
		{"14.1 plain", eas.V141, false},
		{"14.1 base64", eas.V141, true},
		{"16.1 plain", eas.V161, false},
		{"16.1 base64", eas.V161, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := NewFakeCAS(FakeCASConfig{
				Messages: 60, MessageSize: 500, AttachmentSize: 10000, TimeScale: 600,
				Users: map[string]string{"jdoe": "secret"},
			})
			url := startCAS(t, f)
			d := NewDevice(DeviceConfig{Target: url, User: "jdoe", Password: "secret", DeviceID: "ApplTEST0001",
				Profile: testProfile(tc.version, tc.base64), TimeScale: 600, VerifyContent: true})
			if err := d.Setup(); err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if d.Items != 60 {
				t.Errorf("synced %d items, want 60", d.Items)
			}
			if len(d.Attachments) == 0 {
				t.Fatalf("no attachments seen")
			}
			n, err := d.FetchAttachment(d.Attachments[0])
			if err != nil || n != 10000 {
				t.Fatalf("FetchAttachment = %d, %v; want 10000", n, err)
			}
			if err := d.SendMail(3000); err != nil {
				t.Fatalf("SendMail: %v", err)
			}
			// Heartbeat 60 s at scale 600 = 100 ms: expires with Status 1.
			st, _, err := d.Ping(60)
			if err != nil || st != 1 {
				t.Fatalf("Ping = %d, %v; want 1", st, err)
			}
			// New mail wakes a held Ping with Status 2 and the Inbox.
			go func() {
				for f.Stats().HeldPings == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				f.Deliver("jdoe", 3)
			}()
			st, folders, err := d.Ping(3000)
			if err != nil || st != 2 || len(folders) != 1 || folders[0] != d.InboxID {
				t.Fatalf("Ping = %d %v, %v; want 2 [%s]", st, folders, err, d.InboxID)
			}
			got, err := d.SyncAll(d.InboxID)
			if err != nil || got != 3 {
				t.Fatalf("SyncAll after delivery = %d, %v; want 3", got, err)
			}
			s := f.Stats()
			if s.Provisioned != 1 || s.SendMail != 1 || s.Panics != 0 || s.BadRequests != 0 {
				t.Errorf("stats: %+v", s)
			}
			for _, cmd := range []string{"OPTIONS", "Provision", "Settings", "FolderSync", "Sync", "Ping", "SendMail"} {
				if s.Requests[cmd] == 0 {
					t.Errorf("no %s request counted: %v", cmd, s.Requests)
				}
			}
			if tc.version < eas.V140 && s.Requests["GetAttachment"] != 1 {
				t.Errorf("12.1 attachment not fetched by GetAttachment: %v", s.Requests)
			}
			if tc.version >= eas.V140 && s.Requests["ItemOperations"] != 1 {
				t.Errorf("attachment not fetched by ItemOperations: %v", s.Requests)
			}
			if info, ok := f.DeviceInfo("jdoe", "ApplTEST0001"); !ok || info.Model != "iPhone15C2" {
				t.Errorf("DeviceInfo = %+v, %v", info, ok)
			}
		})
	}
}
