package proxy

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/easgate/easgate/proxy/config"
	"github.com/rs/zerolog"
)

// accessLog is where the per-request lines go (log.access_log, log.format).
type accessLog struct {
	log  zerolog.Logger
	off  bool
	file *os.File // nil for stdout/stderr
	buf  *lineBuffer
}

// accessFlushEvery bounds how long an access-log line may sit in the buffer.
const accessFlushEvery = 200 * time.Millisecond

// lineBuffer batches access-log lines into few large writes, as nginx's
// access_log buffer= does: one write system call per request costs more than
// the rest of the pipeline under load. Lines are flushed when 64 KiB have
// accumulated, every accessFlushEvery, and on close; a line is never split.
type lineBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newLineBuffer(w io.Writer) *lineBuffer {
	b := &lineBuffer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(accessFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.flush()
			}
		}
	}()
	return b
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w.Available() < len(p) {
		if err := b.w.Flush(); err != nil {
			return 0, err
		}
	}
	return b.w.Write(p)
}

func (b *lineBuffer) flush() {
	b.mu.Lock()
	_ = b.w.Flush()
	b.mu.Unlock()
}

func (b *lineBuffer) close() {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.flush()
	})
}

// openAccessLog opens the configured access-log output. Files are opened
// for append and created 0640.
func openAccessLog(c config.Log, stdout io.Writer) (*accessLog, error) {
	al := &accessLog{}
	var w io.Writer
	switch strings.ToLower(c.AccessLog) {
	case "off":
		al.off = true
		al.log = zerolog.Nop()
		return al, nil
	case "", "stdout":
		w = stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(c.AccessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("proxy: access log: %w", err)
		}
		al.file, w = f, f
	}
	al.buf = newLineBuffer(w)
	w = al.buf
	if strings.EqualFold(c.Format, "console") {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	al.log = zerolog.New(w).With().Timestamp().Logger()
	return al, nil
}

func (al *accessLog) close() {
	if al == nil {
		return
	}
	if al.buf != nil {
		al.buf.close()
	}
	if al.file != nil {
		_ = al.file.Close()
	}
}

// writeAccess writes one line per request. It never logs the Authorization
// header, the password or the query string (which may carry them in the
// base64 form); the user is the EAS user or the Basic user name only.
func (st *state) writeAccess(x *exchange, cmd, decision string, total time.Duration) {
	al := st.access
	if al == nil || al.off {
		return
	}
	e := al.log.Info()
	if x.remote != nil {
		e = e.Stringer("client", x.remote)
	}
	e = e.Bytes("user", x.field(x.user)).
		Bytes("device_id", x.field(x.device)).
		Bytes("device_type", x.field(x.devTyp)).
		Str("client_family", x.client.Family.String()).
		Str("os", x.client.OS.String())
	if x.client.OSVersion.Known {
		e = e.Str("os_version", x.client.OSVersion.String())
	}
	e = e.Str("command", cmd)
	if x.version != 0 {
		e = e.Str("protocol", x.version.String())
	}
	e = x.logPolicy(e.Str("decision", decision)) // enforce.go
	e = x.logAuth(e)                             // authn.go
	if x.reason != "" {
		e = e.Str("answered_by", "easgate").Str("why", x.reason)
	}
	if x.backend != nil {
		e = e.Str("upstream", x.backend.name)
	}
	e = e.Int("status", x.status).
		Int64("bytes_in", x.bytesIn).
		Int64("bytes_out", x.bytesOut).
		Float64("duration_ms", float64(total.Microseconds())/1000).
		Float64("upstream_ms", float64(x.upDur.Microseconds())/1000)
	if x.hold != 0 {
		e = e.Int("hold_s", x.hold).Float64("held_s", x.upDur.Seconds())
	}
	if x.errText != "" {
		e = e.Str("error", x.errText)
	}
	e.Send()
}
