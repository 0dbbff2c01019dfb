package quarantine

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

func TestNoticeTemplates(t *testing.T) {
	data := NoticeData{User: `<script>alert(1)</script>`, DeviceID: "dev1", DeviceType: "Android", Model: "Pixel 8",
		Client: "Gmail", OS: "Android 14", Reason: "not enrolled", Date: testTime}
	for _, tt := range []struct {
		name, src          string
		wantHTML, wantText []string
		notHTML            []string
		wantErr            string
	}{
		{name: "default", src: DefaultTemplate,
			wantHTML: []string{"&lt;script&gt;", `href="https://enrol.example.com"`, "Pixel 8"},
			notHTML:  []string{"<script>"},
			wantText: []string{"Hello <script>alert(1)</script>,", "https://enrol.example.com", "not enrolled"}},
		{name: "top-level html, own text", src: `<p>{{.User}} on {{.Model}}: <a href="{{.EnrollURL}}">enrol</a></p>{{define "text"}}{{.User}} must enrol at {{.EnrollURL}}{{end}}`,
			wantHTML: []string{"<p>&lt;script&gt;alert(1)&lt;/script&gt; on Pixel 8"},
			wantText: []string{"<script>alert(1)</script> must enrol at https://enrol.example.com"}},
		{name: "html only: default text", src: `<p>{{.Reason}}</p>`,
			wantHTML: []string{"<p>not enrolled</p>"}, wantText: []string{"Your device Pixel 8 (Gmail, Android 14)"}},
		{name: "unknown field", src: `<p>{{.Nope}}</p>`, wantErr: "Nope"},
		{name: "syntax", src: `<p>{{.User</p>`, wantErr: "template"},
		{name: "bad utf-8", src: "<p>\xff</p>", wantErr: "UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNotice(NoticeConfig{From: "IT <it@example.com>", EnrollURL: "https://enrol.example.com"}, "t.html", tt.src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := n.Render(data, "jdoe@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != DefaultSubject || m.From != "IT <it@example.com>" || m.To != "jdoe@example.com" || !m.Date.Equal(testTime) {
				t.Errorf("header fields %+v", m)
			}
			for _, s := range tt.wantHTML {
				if !strings.Contains(m.HTML, s) {
					t.Errorf("HTML lacks %q:\n%s", s, m.HTML)
				}
			}
			for _, s := range tt.notHTML {
				if strings.Contains(m.HTML, s) {
					t.Errorf("HTML contains %q", s)
				}
			}
			for _, s := range tt.wantText {
				if !strings.Contains(m.Text, s) {
					t.Errorf("text lacks %q:\n%s", s, m.Text)
				}
			}
		})
	}
}

func TestLoadNotice(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notice.html")
	if err := os.WriteFile(path, []byte(`<p>Hi {{.User}}</p>{{define "text"}}Hi {{.User}}{{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := LoadNotice(NoticeConfig{Template: path, Subject: "Device {{.DeviceID}}\nquarantined"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.Render(NoticeData{User: "bob", DeviceID: "d1"}, "bob")
	if err != nil || m.HTML != "<p>Hi bob</p>" || m.Text != "Hi bob" || m.Subject != "Device d1 quarantined" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := LoadNotice(NoticeConfig{Template: filepath.Join(dir, "missing.html")}); err == nil {
		t.Error("missing template file accepted")
	}
	if _, err := LoadNotice(NoticeConfig{Subject: "{{.Bogus}}"}); err == nil {
		t.Error("bad subject accepted")
	}
	// A template that fails only for some devices falls back to the
	// built-in notice, and Enter says so.
	n, err = ParseNotice(NoticeConfig{}, "t", `{{if eq .Model "boom"}}{{index .User 99}}{{end}}ok`)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := New(Options{Notice: n})
	d := android
	d.Model = "boom"
	rec, entered, rerr := e.Enter(d, "r")
	if !entered || rerr == nil || !strings.Contains(rec.Notice.HTML, "cannot sync mail yet") {
		t.Fatalf("fallback: entered %v err %v html %q", entered, rerr, rec.Notice.HTML)
	}
	if _, entered, _ := e.Enter(d, "r"); entered {
		t.Error("second Enter reported entered")
	}
}

// TestNoticeMIME: a client asking for MIME gets a multipart message whose
// parts carry the notice.
func TestNoticeMIME(t *testing.T) {
	e := newTestEmulator(t, nil)
	p := newPhone(t, e, eas.V141)
	p.hierarchy()
	p.sync([]string{"5"}, []int{4}, nil)
	p.sync([]string{"5"}, []int{4}, nil)
	item := p.items["5:Qtest"]
	if item == nil || item.text(wbxml.AirSyncBaseBody, wbxml.AirSyncBaseType) != "4" {
		t.Fatalf("no MIME notice: %+v", item)
	}
	mime := item.text(wbxml.AirSyncBaseBody, wbxml.AirSyncBaseData)
	for _, s := range []string{"multipart/alternative", "Content-Type: text/html", "Content-Type: text/plain", "Subject: Approve SM-G991B"} {
		if !strings.Contains(mime, s) {
			t.Errorf("MIME lacks %q", s)
		}
	}
}

func TestNotifier(t *testing.T) {
	var mu sync.Mutex
	var got []Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev Event
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &ev) != nil {
			w.WriteHeader(400)
			return
		}
		if ev.DeviceID == "fail" {
			w.WriteHeader(500)
			return
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer srv.Close()
	var errs []string
	var emu sync.Mutex
	n, err := NewNotifier(NotifierConfig{URL: srv.URL + "/hook?token=s3cret", Timeout: 5 * time.Second,
		OnError: func(ev Event, err error) { emu.Lock(); errs = append(errs, err.Error()); emu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(Event{Event: "quarantine", User: "jdoe", DeviceID: "d1", Reasons: []string{"device-not-enrolled"}, Enforced: true})
	n.Notify(Event{Event: "block", User: "jdoe", DeviceID: "fail"})
	n.Close()
	if n.Notify(Event{Event: "block"}) {
		t.Error("Notify after Close accepted")
	}
	sent, failed, dropped := n.Stats()
	if sent != 1 || failed != 1 || dropped != 1 {
		t.Errorf("stats %d %d %d", sent, failed, dropped)
	}
	if len(got) != 1 || got[0].Event != "quarantine" || got[0].Reasons[0] != "device-not-enrolled" || !got[0].Enforced {
		t.Errorf("received %+v", got)
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "HTTP 500") {
		t.Errorf("errors %v", errs)
	}

	// An unreachable hook: the error names neither the URL nor its token.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.URL
	ln.Close()
	errs = nil
	n, _ = NewNotifier(NotifierConfig{URL: addr + "/?token=s3cret", Timeout: time.Second,
		OnError: func(ev Event, err error) { emu.Lock(); errs = append(errs, err.Error()); emu.Unlock() }})
	n.Notify(Event{Event: "block"})
	n.Close()
	if len(errs) != 1 || strings.Contains(errs[0], "s3cret") {
		t.Errorf("errors %v", errs)
	}
	if _, err := NewNotifier(NotifierConfig{}); err == nil {
		t.Error("empty URL accepted")
	}
}
