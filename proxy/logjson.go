package proxy

import (
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// The access log's JSON encoding (accesslog.go). Each helper appends one
// `,"key":value` member; keys are constants and are not escaped.

func appendKey(b []byte, key string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// appendStr appends a string member, escaped as zerolog escapes strings:
// quote, backslash and control characters are escaped, and bytes that are
// not UTF-8 become U+FFFD, so a hostile User-Agent or user name cannot
// break the line.
func appendStr[T string | []byte](b []byte, key string, v T) []byte {
	return appendQuoted(appendKey(b, key), v)
}

func appendQuoted[T string | []byte](b []byte, v T) []byte {
	b = append(b, '"')
	i := 0
	for ; i+8 <= len(v); i += 8 { // eight bytes at a time
		w := uint64(v[i]) | uint64(v[i+1])<<8 | uint64(v[i+2])<<16 | uint64(v[i+3])<<24 |
			uint64(v[i+4])<<32 | uint64(v[i+5])<<40 | uint64(v[i+6])<<48 | uint64(v[i+7])<<56
		if !plainWord(w) {
			break
		}
	}
	for i < len(v) && jsonPlain[v[i]] {
		i++
	}
	if i == len(v) { // nearly always: nothing to escape
		b = append(b, v...)
		return append(b, '"')
	}
	// Runs of bytes that need no escaping, valid UTF-8 included, are
	// appended whole.
	start := 0
	for i < len(v) {
		c := v[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(string(v[i:min(i+utf8.UTFMax, len(v))]))
			if r == utf8.RuneError && size == 1 {
				b = append(b, v[start:i]...)
				b = append(b, `\ufffd`...)
				start = i + size
			}
			i += size
			continue
		}
		b = append(b, v[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, v[start:]...)
	return append(b, '"')
}

// plainWord reports whether none of the eight bytes of w needs escaping
// (all are jsonPlain). Each test sets a byte's high bit: below 0x20,
// equal to '"', '\\' or 0x7f, or with the high bit set already (not
// ASCII). A borrow can mark a byte above one that matched, never one when
// none did.
func plainWord(w uint64) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	zero := func(x uint64) uint64 { return (x - ones) &^ x }
	return ((w-0x20*ones)&^w|zero(w^'"'*ones)|zero(w^'\\'*ones)|zero(w^0x7f*ones)|w)&high == 0
}

// jsonPlain marks the bytes appendQuoted copies as they are: printable
// ASCII but quote and backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, key), v, 10)
}

func appendBool(b []byte, key string, v bool) []byte {
	return strconv.AppendBool(appendKey(b, key), v)
}

// appendDecimal appends v / 10^scale as a JSON number with no trailing
// zeros: the text strconv.FormatFloat(float64(v)/10^scale, 'f', -1, 64)
// gives for the durations logged (fewer than 16 significant digits), with
// no float arithmetic.
func appendDecimal(b []byte, key string, v int64, scale int) []byte {
	b = appendKey(b, key)
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	pow := int64(1)
	for range scale {
		pow *= 10
	}
	b = strconv.AppendInt(b, v/pow, 10)
	frac := v % pow
	if frac == 0 {
		return b
	}
	var digits [18]byte
	n := scale
	for i := n - 1; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	for n > 0 && digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// appendAddr appends a client address as a quoted "ip:port" ("[ip]:port"
// for IPv6) without the allocation of net.Addr.String.
func appendAddr(b []byte, a net.Addr) []byte {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			b = append(b, '"')
			b = netip.AddrPortFrom(ip.Unmap().WithZone(ta.Zone), uint16(ta.Port)).AppendTo(b)
			return append(b, '"')
		}
	}
	return appendQuoted(b, a.String())
}

// logClock formats the "time" member: RFC 3339 in local time, as zerolog
// writes it, formatted once per second.
var logClock clock

type clock struct{ cur atomic.Pointer[clockText] }

type clockText struct {
	sec  int64
	text []byte // quoted
}

func (c *clock) appendNow(b []byte, now time.Time) []byte {
	sec := now.Unix()
	t := c.cur.Load()
	if t == nil || t.sec != sec {
		t = &clockText{sec: sec, text: append(now.AppendFormat([]byte{'"'}, time.RFC3339), '"')}
		c.cur.Store(t)
	}
	return append(b, t.text...)
}
