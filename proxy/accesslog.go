package proxy

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/proxy/config"
	"github.com/rs/zerolog"
)

// accessLog is where the per-request lines go (log.access_log, log.format).
type accessLog struct {
	out  io.Writer // the line buffer, or a console writer over it
	off  bool
	path string // the file's name; "" for stdout/stderr
	mu   sync.Mutex
	file *os.File // nil for stdout/stderr; replaced by reopen
	buf  *lineBuffer
}

// accessFlushEvery bounds how long an access-log line may sit in the buffer.
const accessFlushEvery = 200 * time.Millisecond

// lineBuffer batches access-log lines into few large writes, as nginx's
// access_log buffer= does: one write system call per request costs more than
// the rest of the pipeline under load. Lines are flushed when 64 KiB have
// accumulated, every accessFlushEvery, and on close; a line is never split.
//
// It has two buffers: requests append to cur under mu, and the one that
// fills it swaps in the spare and writes the full one to the file holding
// only wmu, so the other requests go on appending while the file is
// written. wmu orders the writes and guards w and spare.
type lineBuffer struct {
	mu  sync.Mutex
	cur []byte

	wmu   sync.Mutex
	w     io.Writer
	spare []byte
	err   error // the last write's

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

const lineBufferSize = 64 << 10

func newLineBuffer(w io.Writer) *lineBuffer {
	b := &lineBuffer{w: w, cur: make([]byte, 0, lineBufferSize), spare: make([]byte, 0, lineBufferSize),
		stop: make(chan struct{}), done: make(chan struct{})}
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

// Write buffers one line (or several whole ones).
func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if len(b.cur)+len(p) <= cap(b.cur) {
		b.cur = append(b.cur, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.flushWith(p)
}

// flushWith writes out the buffered lines and buffers p after them (or
// writes p too when it is larger than the buffer).
func (b *lineBuffer) flushWith(p []byte) (int, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	if len(b.cur)+len(p) <= cap(b.cur) { // another request flushed meanwhile
		b.cur = append(b.cur, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	full := b.cur
	b.cur = b.spare[:0]
	big := len(p) > cap(b.cur)
	if !big {
		b.cur = append(b.cur, p...)
	}
	b.mu.Unlock()
	b.write(full)
	if big {
		b.write(p)
	}
	if b.err != nil {
		return 0, b.err
	}
	return len(p), nil
}

// write writes full to w and keeps it as the spare buffer; wmu is held.
func (b *lineBuffer) write(full []byte) {
	if len(full) > 0 {
		_, b.err = b.w.Write(full)
	}
	if cap(full) == lineBufferSize {
		b.spare = full[:0]
	}
}

// flushLocked writes out the buffered lines; wmu is held.
func (b *lineBuffer) flushLocked() {
	b.mu.Lock()
	full := b.cur
	b.cur = b.spare[:0]
	b.mu.Unlock()
	b.write(full)
}

// swap flushes what is buffered to the old writer and sends what follows
// to w.
func (b *lineBuffer) swap(w io.Writer) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.flushLocked()
	b.w = w
}

func (b *lineBuffer) flush() {
	b.wmu.Lock()
	b.flushLocked()
	b.wmu.Unlock()
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
		al.file, al.path, w = f, c.AccessLog, f
	}
	al.buf = newLineBuffer(w)
	w = al.buf
	if strings.EqualFold(c.Format, "console") {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	al.out = w
	return al, nil
}

func (al *accessLog) close() {
	if al == nil {
		return
	}
	if al.buf != nil {
		al.buf.close()
	}
	al.mu.Lock()
	defer al.mu.Unlock()
	if al.file != nil {
		_ = al.file.Close()
		al.file = nil
	}
}

// reopen opens the access-log file again by its name and sends the next
// lines there, after flushing the buffered ones to the old file: logrotate
// renames the file, then signals easgate (SIGHUP or SIGUSR1). stdout,
// stderr and off have nothing to reopen.
func (al *accessLog) reopen() error {
	if al == nil || al.path == "" || al.buf == nil {
		return nil
	}
	f, err := os.OpenFile(al.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("proxy: access log: %w", err)
	}
	al.mu.Lock()
	defer al.mu.Unlock()
	if al.file == nil { // closed meanwhile
		_ = f.Close()
		return nil
	}
	old := al.file
	al.buf.swap(f)
	al.file = f
	return old.Close()
}

// ReopenLogs reopens the access-log file (log.access_log) of the running
// configuration, for log rotation. serve calls it on SIGUSR1 and SIGHUP.
// A failure is logged and the old file stays in use.
func (s *Server) ReopenLogs() {
	st := s.cur.Load()
	if st == nil {
		return
	}
	if err := st.access.reopen(); err != nil {
		s.log.Error().Err(err).Msg("access log not reopened; still writing to the old file")
		return
	}
	if st.access != nil && st.access.path != "" {
		s.log.Info().Str("access_log", st.access.path).Msg("access log reopened")
	}
}

// writeAccess writes one line per request: a JSON object with the same
// fields, order and encoding zerolog gives the other logs ("level" first,
// "time" in RFC 3339 last). It is written by hand because it runs for every
// request: encoding it with zerolog cost about as much as the rest of the
// pipeline. It never logs the Authorization header, the password or the
// query string (which may carry them in the base64 form); the user is the
// EAS user or the Basic user name only. cmd is the command label's index
// (commandIndex).
func (st *state) writeAccess(x *exchange, cmd int, decision string, now time.Time, total time.Duration) {
	al := st.access
	if al == nil || al.off {
		return
	}
	bp := linePool.Get().(*[]byte)
	b := append((*bp)[:0], `{"level":"info"`...)
	if x.remote != nil {
		b = appendKey(b, "client")
		b = appendAddr(b, x.remote)
	}
	b = appendStr(b, "user", x.field(x.user))
	b = appendStr(b, "device_id", x.field(x.device))
	b = appendStr(b, "device_type", x.field(x.devTyp))
	b = append(b, familyMembers[x.client.Family]...)
	b = append(b, osMembers[x.client.OS]...)
	if x.client.OSVersion.Known {
		b = appendKey(b, "os_version")
		b = append(b, '"')
		b = x.client.OSVersion.AppendTo(b)
		b = append(b, '"')
	}
	b = append(b, commandMembers[cmd]...)
	if x.version != 0 {
		b = append(b, protocolMembers[x.version]...)
	}
	if d := decisionIndex(decision); d >= 0 {
		b = append(b, decisionMembers[d]...)
	} else {
		b = appendStr(b, "decision", decision)
	}
	b = x.logPolicy(b) // enforce.go
	b = x.logAuth(b)   // authn.go
	if x.reason != "" {
		b = appendStr(b, "answered_by", "easgate")
		b = appendStr(b, "why", x.reason)
	}
	if x.backend != nil {
		b = appendStr(b, "upstream", x.backend.Name)
	}
	b = appendInt(b, "status", int64(x.status))
	b = appendInt(b, "bytes_in", x.bytesIn)
	b = appendInt(b, "bytes_out", x.bytesOut)
	b = appendDecimal(b, "duration_ms", total.Microseconds(), 3)
	b = appendDecimal(b, "upstream_ms", x.upDur.Microseconds(), 3)
	if x.hold != 0 {
		b = appendInt(b, "hold_s", int64(x.hold))
		b = appendDecimal(b, "held_s", x.upDur.Nanoseconds(), 9)
	}
	if x.errText != "" {
		b = appendStr(b, "error", x.errText)
	}
	b = appendKey(b, "time")
	b = logClock.appendNow(b, now)
	b = append(b, "}\n"...)
	_, _ = al.out.Write(b)
	*bp = b
	linePool.Put(bp)
}

// The members of the fields whose values come from small sets, encoded
// once for each value as appendStr encodes them (Version.String would look
// the protocol up in a map on every request).
var (
	familyMembers   = members("client_family", 256, func(i int) string { return eas.Family(i).String() })
	osMembers       = members("os", 256, func(i int) string { return eas.OSFamily(i).String() })
	commandMembers  = members("command", cmdLabels, func(i int) string { return cmdLabelNames[i] })
	protocolMembers = members("protocol", 256, func(i int) string { return eas.Version(i).String() })
	decisionMembers = members("decision", len(decisionLabels), func(i int) string { return decisionLabels[i] })
)

func members(key string, n int, name func(int) string) []string {
	t := make([]string, n)
	for i := range t {
		t[i] = string(appendStr(nil, key, name(i)))
	}
	return t
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
