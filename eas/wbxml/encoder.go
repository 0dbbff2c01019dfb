package wbxml

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// header is the WBXML header ActiveSync peers send: version 1.3, public id 1
// (unknown), charset 106 (UTF-8), empty string table.
var header = [4]byte{0x03, 0x01, 0x6A, 0x00}

// Encoder appends a WBXML body to a caller's buffer. It tracks the current
// code page (starting at 0, as decoders do) and emits SWITCH_PAGE only when a
// tag's page differs. The first misuse (END with nothing open, an invalid tag,
// a string containing NUL or invalid UTF-8, content outside an element) is
// recorded in Err and turns every later call into a no-op. It is not safe for
// concurrent use.
type Encoder struct {
	buf   []byte
	page  uint8
	depth int
	err   error
}

// NewEncoder returns an Encoder that appends to dst.
func NewEncoder(dst []byte) *Encoder {
	return &Encoder{buf: dst}
}

// Reset makes e append to dst, forgetting open elements, page and error.
func (e *Encoder) Reset(dst []byte) {
	*e = Encoder{buf: dst}
}

func (e *Encoder) fail(code ErrorCode, msg string) {
	if e.err == nil {
		e.err = &SyntaxError{Offset: len(e.buf), Code: code, Msg: msg}
	}
}

// Header appends 03 01 6A 00 and sets the current page to 0.
func (e *Encoder) Header() {
	if e.err != nil {
		return
	}
	e.buf = append(e.buf, header[:]...)
	e.page = 0
}

func (e *Encoder) tag(t Tag, content bool) {
	if e.err != nil {
		return
	}
	if !t.valid() {
		e.fail(ErrBadTag, "invalid tag "+t.String())
		return
	}
	if t.Page() != e.page {
		e.buf = append(e.buf, tokSwitchPage, t.Page())
		e.page = t.Page()
	}
	b := t.Token()
	if content {
		b |= contentBit
		e.depth++
	}
	e.buf = append(e.buf, b)
}

// Start opens element t, which has content; close it with End.
func (e *Encoder) Start(t Tag) { e.tag(t, true) }

// Empty appends the empty element t (<t/>).
func (e *Encoder) Empty(t Tag) { e.tag(t, false) }

// End closes the innermost open element.
func (e *Encoder) End() {
	if e.err != nil {
		return
	}
	if e.depth == 0 {
		e.fail(ErrUnexpectedEnd, "End with no open element")
		return
	}
	e.depth--
	e.buf = append(e.buf, tokEnd)
}

func (e *Encoder) content() bool {
	if e.err != nil {
		return false
	}
	if e.depth == 0 {
		e.fail(ErrContentOutsideRoot, "content outside any element")
		return false
	}
	return true
}

// String appends s as an inline string (STR_I).
func (e *Encoder) String(s string) {
	if !e.content() {
		return
	}
	if strings.IndexByte(s, 0) >= 0 {
		e.fail(ErrNULInString, "string contains NUL")
		return
	}
	if !utf8.ValidString(s) {
		e.fail(ErrInvalidUTF8, "string is not valid UTF-8")
		return
	}
	e.buf = append(e.buf, tokStrI)
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, 0)
}

// Text appends b as an inline string (STR_I).
func (e *Encoder) Text(b []byte) {
	if !e.content() {
		return
	}
	if bytes.IndexByte(b, 0) >= 0 {
		e.fail(ErrNULInString, "text contains NUL")
		return
	}
	if !utf8.Valid(b) {
		e.fail(ErrInvalidUTF8, "text is not valid UTF-8")
		return
	}
	e.buf = append(e.buf, tokStrI)
	e.buf = append(e.buf, b...)
	e.buf = append(e.buf, 0)
}

// Opaque appends b as OPAQUE data.
func (e *Encoder) Opaque(b []byte) {
	if !e.content() {
		return
	}
	if uint64(len(b)) > 0xFFFFFFFF {
		e.fail(ErrOpaqueTooLong, "opaque data longer than 2^32-1 bytes")
		return
	}
	e.buf = append(e.buf, tokOpaque)
	e.buf = AppendMBUint32(e.buf, uint32(len(b)))
	e.buf = append(e.buf, b...)
}

// Element appends <t>s</t>: Start, String, End.
func (e *Encoder) Element(t Tag, s string) {
	e.Start(t)
	e.String(s)
	e.End()
}

// Bytes returns the buffer: the caller's dst with everything appended so far.
func (e *Encoder) Bytes() []byte { return e.buf }

// Depth returns the number of open elements.
func (e *Encoder) Depth() int { return e.depth }

// Err returns the first misuse, or nil. It does not report elements left
// open; check Depth for that.
func (e *Encoder) Err() error { return e.err }

// AppendMBUint32 appends v as a WBXML multi-byte integer (7 bits per byte,
// most significant group first, high bit set on all but the last byte).
func AppendMBUint32(dst []byte, v uint32) []byte {
	var tmp [5]byte
	i := len(tmp) - 1
	tmp[i] = byte(v & 0x7F)
	for v >>= 7; v != 0; v >>= 7 {
		i--
		tmp[i] = byte(v&0x7F) | 0x80
	}
	return append(dst, tmp[i:]...)
}
