package quarantine

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"os"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode/utf8"
)

// NoticeConfig is the administrator's notice settings
// (policy.quarantine.notice in the config file).
type NoticeConfig struct {
	// From is the notice's sender as an RFC 5322 address
	// (`IT Service Desk <it@corp.example.com>`).
	From string
	// Subject is a text/template over NoticeData ("" gives a default).
	Subject string
	// Template is the path of the administrator's template file; "" uses
	// the built-in default. See ParseNotice for its format.
	Template string
	// EnrollURL is where the user enrols the device (NoticeData.EnrollURL).
	EnrollURL string
}

// NoticeData is what the notice templates see.
type NoticeData struct {
	User       string // the EAS user as the phone sent it
	DeviceID   string
	DeviceType string
	Model      string // DeviceInformation Model, or "" when none was sent
	Client     string // the mail client ("iOS Mail", "Gmail", ...)
	OS         string // the OS and version as reported or derived
	Reason     string // why the device is quarantined, for people
	EnrollURL  string
	From       string
	Subject    string // the rendered subject
	Date       time.Time
}

// Mail is a rendered notice.
type Mail struct {
	From    string    `json:"from"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	HTML    string    `json:"html"`
	Text    string    `json:"text"`
	Date    time.Time `json:"date"`
}

// MaxNoticeSize bounds a rendered notice body (HTML or text), in bytes.
const MaxNoticeSize = 256 << 10

// DefaultSubject is used when NoticeConfig.Subject is empty.
const DefaultSubject = "Your device must be approved before it can sync mail"

// DefaultTemplate is the built-in notice. It shows the template file
// format: the file is an html/template for the HTML body; a {{define
// "text"}} block, when present, is the plain-text body (executed with
// text/template, so nothing in it is HTML-escaped); a {{define "html"}}
// block, when present, replaces the file's top level as the HTML body.
const DefaultTemplate = `{{define "html"}}<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family:sans-serif">
<p>Hello {{.User}},</p>
<p>Your device <b>{{if .Model}}{{.Model}}{{else}}{{.DeviceType}}{{end}}</b> ({{.Client}}{{if .OS}}, {{.OS}}{{end}}) cannot sync mail yet: {{.Reason}}.</p>
{{if .EnrollURL}}<p>To get access, enrol the device: <a href="{{.EnrollURL}}">{{.EnrollURL}}</a>. Your mail appears on the device once it is approved; nothing is lost.</p>
{{else}}<p>Your mail appears on the device once an administrator approves it; nothing is lost.</p>
{{end}}<p>Mail you write on this device stays in its Outbox until then.</p>
<p style="color:#666;font-size:small">Device ID {{.DeviceID}}, type {{.DeviceType}}. {{.Date.UTC.Format "2006-01-02 15:04 MST"}}</p>
<p>{{.From}}</p>
</body></html>
{{end}}{{define "text"}}Hello {{.User}},

Your device {{if .Model}}{{.Model}}{{else}}{{.DeviceType}}{{end}} ({{.Client}}{{if .OS}}, {{.OS}}{{end}}) cannot sync mail yet: {{.Reason}}.
{{if .EnrollURL}}
To get access, enrol the device: {{.EnrollURL}}
Your mail appears on the device once it is approved; nothing is lost.
{{else}}
Your mail appears on the device once an administrator approves it; nothing is lost.
{{end}}Mail you write on this device stays in its Outbox until then.

Device ID {{.DeviceID}}, type {{.DeviceType}}. {{.Date.UTC.Format "2006-01-02 15:04 MST"}}
{{.From}}
{{end}}`

// Notice renders the quarantine notice. It is safe for concurrent use.
type Notice struct {
	cfg     NoticeConfig
	html    *htmltemplate.Template
	htmlRun string // the template to execute for the HTML body
	text    *texttemplate.Template
	subject *texttemplate.Template
}

// LoadNotice reads cfg.Template (or uses DefaultTemplate) and parses it.
func LoadNotice(cfg NoticeConfig) (*Notice, error) {
	src, name := DefaultTemplate, "default"
	if cfg.Template != "" {
		b, err := os.ReadFile(cfg.Template)
		if err != nil {
			return nil, fmt.Errorf("quarantine notice template: %w", err)
		}
		src, name = string(b), cfg.Template
	}
	return ParseNotice(cfg, name, src)
}

// ParseNotice parses a notice template src (named name in errors). The
// source is an html/template for the HTML body. A {{define "text"}} block
// gives the plain-text body, parsed separately with text/template; without
// one the built-in default text is used. A {{define "html"}} block, when
// present, is the HTML body instead of the top level.
func ParseNotice(cfg NoticeConfig, name, src string) (*Notice, error) {
	if !utf8.ValidString(src) {
		return nil, fmt.Errorf("quarantine notice template %s: not valid UTF-8", name)
	}
	n := &Notice{cfg: cfg}
	var err error
	n.html, err = htmltemplate.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("quarantine notice template: %w", err)
	}
	n.htmlRun = name
	if n.html.Lookup("html") != nil {
		n.htmlRun = "html"
	}
	tt, err := texttemplate.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("quarantine notice template: %w", err)
	}
	if tt.Lookup("text") == nil {
		tt, err = texttemplate.New("default").Parse(DefaultTemplate)
		if err != nil {
			return nil, fmt.Errorf("quarantine notice built-in template: %w", err)
		}
	}
	n.text = tt
	subj := cfg.Subject
	if strings.TrimSpace(subj) == "" {
		subj = DefaultSubject
	}
	n.subject, err = texttemplate.New("subject").Option("missingkey=error").Parse(subj)
	if err != nil {
		return nil, fmt.Errorf("quarantine notice subject: %w", err)
	}
	// Render once with sample data so that template errors that only show
	// at execution (a misspelt field) are reported at load time.
	if _, err := n.Render(NoticeData{User: "user@example.com", DeviceID: "DEVICE", DeviceType: "Phone", Date: time.Unix(0, 0)}, "user@example.com"); err != nil {
		return nil, err
	}
	return n, nil
}

// Config returns the settings the notice was built from.
func (n *Notice) Config() NoticeConfig { return n.cfg }

// errTooLarge is returned by limitWriter past MaxNoticeSize.
var errTooLarge = errors.New("rendered notice larger than 256 KiB")

type limitWriter struct{ b bytes.Buffer }

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > MaxNoticeSize {
		return 0, errTooLarge
	}
	return w.b.Write(p)
}

// Render executes the templates for d. From, EnrollURL and Subject in d are
// filled from the configuration when empty. to is the recipient.
func (n *Notice) Render(d NoticeData, to string) (Mail, error) {
	if d.From == "" {
		d.From = n.cfg.From
	}
	if d.EnrollURL == "" {
		d.EnrollURL = n.cfg.EnrollURL
	}
	var w limitWriter
	if err := n.subject.Execute(&w, d); err != nil {
		return Mail{}, fmt.Errorf("quarantine notice subject: %w", err)
	}
	d.Subject = oneLine(w.b.String())
	w.b.Reset()
	if err := n.html.ExecuteTemplate(&w, n.htmlRun, d); err != nil {
		return Mail{}, fmt.Errorf("quarantine notice (html): %w", err)
	}
	html := clean(w.b.String())
	w.b.Reset()
	if err := n.text.ExecuteTemplate(&w, "text", d); err != nil {
		return Mail{}, fmt.Errorf("quarantine notice (text): %w", err)
	}
	return Mail{From: oneLine(d.From), To: oneLine(to), Subject: d.Subject, HTML: html, Text: clean(w.b.String()), Date: d.Date}, nil
}

// clean removes NUL bytes and replaces invalid UTF-8: WBXML inline strings
// can carry neither.
func clean(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// oneLine cleans s and folds line breaks into spaces (header values).
func oneLine(s string) string {
	s = clean(s)
	if strings.ContainsAny(s, "\r\n") {
		s = strings.Join(strings.Fields(s), " ")
	}
	return strings.TrimSpace(s)
}
