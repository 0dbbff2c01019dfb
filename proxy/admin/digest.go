package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	mail "github.com/wneessen/go-mail"

	"github.com/easgate/easgate/proxy/config"
)

// The admin mail digest (admin.digest): instead of one mail per device, as
// Exchange's quarantine mail does, administrators get one mail per
// interval listing the devices that entered quarantine or were blocked.
//
// Mail goes through github.com/wneessen/go-mail: a maintained SMTP client
// with STARTTLS (mandatory here), implicit TLS, SMTP AUTH and proper MIME
// encoding of headers and bodies, which net/smtp (frozen) leaves to the
// caller.

// DigestEvent is one device that entered quarantine or was blocked.
type DigestEvent struct {
	Time       time.Time
	Event      string // quarantine or block
	User       string
	DeviceID   string
	DeviceType string
	Model      string
	OS         string
	Client     string
	Reasons    []string
	Rule       string
}

// DigestSettings are admin.digest, with its files read.
type DigestSettings struct {
	host     string
	port     int
	mode     string
	tls      *tls.Config
	user     string
	password string
	from     string
	to       []string
	interval time.Duration
}

// Interval returns how often the digest goes out.
func (s *DigestSettings) Interval() time.Duration { return s.interval }

// LoadDigest reads admin.digest (nil when the digest is off). It reads
// the password and CA files, so a reload with a broken one is refused.
func LoadDigest(c *config.Digest) (*DigestSettings, error) {
	if c.SMTP == "" {
		return nil, nil
	}
	host, portStr, err := net.SplitHostPort(c.SMTP)
	if err != nil {
		return nil, fmt.Errorf("admin.digest.smtp: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("admin.digest.smtp: bad port %q", portStr)
	}
	s := &DigestSettings{host: host, port: port, mode: c.TLS, user: c.Username, from: c.From, to: c.To, interval: c.Interval.D()}
	if s.mode == "" {
		s.mode = config.DigestSTARTTLS
	}
	if s.interval <= 0 {
		s.interval = time.Hour
	}
	s.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.TrustedCAs != "" {
		pem, err := os.ReadFile(c.TrustedCAs)
		if err != nil {
			return nil, fmt.Errorf("admin.digest.trusted_cas: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin.digest.trusted_cas: %s holds no PEM certificate", c.TrustedCAs)
		}
		s.tls.RootCAs = pool
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("admin.digest.password_file: %w", err)
		}
		s.password = strings.TrimSpace(string(b))
	}
	return s, nil
}

// maxPending bounds the events kept between two mails; past it, devices
// are counted, not listed.
const maxPending = 10_000

// Digest collects events and mails them at the configured interval. Add
// never blocks. It is safe for concurrent use.
type Digest struct {
	log  zerolog.Logger
	node string

	mu      sync.Mutex
	set     *DigestSettings // nil: off
	pending []DigestEvent
	dropped int
	since   time.Time

	changed chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewDigest starts a digest that is off until Configure.
func NewDigest(log zerolog.Logger) *Digest {
	d := &Digest{log: log, changed: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), since: time.Now()}
	if h, err := os.Hostname(); err == nil {
		d.node = h
	}
	go d.loop()
	return d
}

// Configure applies new settings (nil: off; pending events are dropped).
func (d *Digest) Configure(s *DigestSettings) {
	d.mu.Lock()
	d.set = s
	if s == nil {
		d.pending, d.dropped = nil, 0
	}
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// Add queues one event for the next mail (dropped while the digest is off).
func (d *Digest) Add(ev DigestEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set == nil {
		return
	}
	if len(d.pending) >= maxPending {
		d.dropped++
		return
	}
	d.pending = append(d.pending, ev)
}

func (d *Digest) loop() {
	defer close(d.done)
	interval := func() time.Duration {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.set == nil {
			return time.Hour
		}
		return d.set.interval
	}
	t := time.NewTimer(interval())
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-d.changed:
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := d.Flush(ctx); err != nil {
				d.log.Warn().Err(err).Msg("admin digest not sent; it is retried at the next interval")
			}
			cancel()
		}
		t.Reset(interval())
	}
}

// Flush mails the pending events now (nothing when there are none). On
// failure they stay pending for the next attempt.
func (d *Digest) Flush(ctx context.Context) error {
	d.mu.Lock()
	set, events, dropped, since := d.set, d.pending, d.dropped, d.since
	if set == nil || len(events) == 0 && dropped == 0 {
		d.mu.Unlock()
		return nil
	}
	d.pending, d.dropped, d.since = nil, 0, time.Now()
	d.mu.Unlock()
	subject, body := digestText(events, dropped, since, time.Now(), d.node)
	err := send(ctx, set, subject, body)
	if err != nil {
		d.mu.Lock()
		d.pending = append(events, d.pending...)
		if len(d.pending) > maxPending {
			d.dropped += len(d.pending) - maxPending
			d.pending = d.pending[:maxPending]
		}
		d.dropped += dropped
		d.since = since
		d.mu.Unlock()
		return err
	}
	d.log.Info().Int("devices", len(events)+dropped).Strs("to", set.to).Msg("admin digest sent")
	return nil
}

// Close stops the digest and tries once, briefly, to send what is pending.
func (d *Digest) Close() {
	d.once.Do(func() {
		close(d.stop)
		<-d.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Flush(ctx); err != nil {
			d.log.Warn().Err(err).Msg("admin digest not sent at shutdown")
		}
	})
}

// digestText writes the mail: a subject that counts, and one line per
// device.
func digestText(events []DigestEvent, dropped int, since, now time.Time, node string) (string, string) {
	q, b := 0, 0
	for _, e := range events {
		if e.Event == "block" {
			b++
		} else {
			q++
		}
	}
	subject := fmt.Sprintf("easgate: %d device(s) quarantined, %d blocked", q, b)
	var sb strings.Builder
	fmt.Fprintf(&sb, "Devices that entered quarantine or were blocked between %s and %s", since.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	if node != "" {
		fmt.Fprintf(&sb, " on %s", node)
	}
	sb.WriteString(":\n\n")
	for _, e := range events {
		fmt.Fprintf(&sb, "%s  %-10s  %s  %s", e.Time.UTC().Format(time.RFC3339), e.Event, e.User, e.DeviceID)
		var what []string
		for _, s := range []string{e.DeviceType, e.Model, e.OS, e.Client} {
			if s != "" {
				what = append(what, s)
			}
		}
		if len(what) > 0 {
			fmt.Fprintf(&sb, " (%s)", strings.Join(what, ", "))
		}
		if len(e.Reasons) > 0 {
			fmt.Fprintf(&sb, ": %s", strings.Join(e.Reasons, ", "))
		}
		if e.Rule != "" {
			fmt.Fprintf(&sb, " [rule %s]", e.Rule)
		}
		sb.WriteByte('\n')
	}
	if dropped > 0 {
		fmt.Fprintf(&sb, "\n... and %d more (too many to list).\n", dropped)
	}
	sb.WriteString("\nApprove or block with `easgate devices allow|block --user U --device-id D`, or in the admin API.\n")
	return subject, sb.String()
}

// send mails one message through the relay.
func send(ctx context.Context, s *DigestSettings, subject, body string) error {
	opts := []mail.Option{mail.WithPort(s.port), mail.WithTLSConfig(s.tls), mail.WithTimeout(30 * time.Second)}
	switch s.mode {
	case config.DigestTLS:
		opts = append(opts, mail.WithSSL())
	case config.DigestNoTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if s.user != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(s.user), mail.WithPassword(s.password))
	}
	c, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return err
	}
	m := mail.NewMsg()
	if err := m.From(s.from); err != nil {
		return fmt.Errorf("admin.digest.from: %w", err)
	}
	if err := m.To(s.to...); err != nil {
		return fmt.Errorf("admin.digest.to: %w", err)
	}
	m.Subject(subject)
	m.SetDate()
	m.SetMessageID()
	m.SetBodyString(mail.TypeTextPlain, body)
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return errors.New("admin digest: " + err.Error())
	}
	return nil
}
