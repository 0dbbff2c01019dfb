package wbxml

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// Kind is the type of a Token.
type Kind uint8

// Token kinds.
const (
	StartTag Kind = iota + 1
	EndTag
	Text
	Opaque
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case StartTag:
		return "StartTag"
	case EndTag:
		return "EndTag"
	case Text:
		return "Text"
	case Opaque:
		return "Opaque"
	}
	return "Kind(?)"
}

// Token is one item of a WBXML body.
type Token struct {
	Kind Kind
	// Tag is the element for StartTag/EndTag and the enclosing element for
	// Text/Opaque.
	Tag Tag
	// HasContent is set on a StartTag that has content; when false (<Tag/>)
	// no EndTag follows.
	HasContent bool
	// Data holds the Text (without its NUL) or the Opaque bytes. It aliases
	// the input and is valid until the next call to Next, Skip or Reset.
	Data []byte
}

// Limits bound what a Decoder accepts. A zero field means the DefaultLimits
// value for that field.
type Limits struct {
	MaxDepth     int // maximum element nesting
	MaxStringLen int // maximum length of one inline string, in bytes
	MaxOpaqueLen int // maximum length of one OPAQUE item, in bytes
	MaxSize      int // maximum size of the whole body, in bytes
}

// DefaultLimits are the limits of a new Decoder.
var DefaultLimits = Limits{MaxDepth: 64, MaxStringLen: 1 << 20, MaxOpaqueLen: 64 << 20, MaxSize: 64 << 20}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxStringLen <= 0 {
		l.MaxStringLen = DefaultLimits.MaxStringLen
	}
	if l.MaxOpaqueLen <= 0 {
		l.MaxOpaqueLen = DefaultLimits.MaxOpaqueLen
	}
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultLimits.MaxSize
	}
	return l
}

// WBXML global tokens (WBXML 1.3 §7.1).
const (
	tokSwitchPage = 0x00
	tokEnd        = 0x01
	tokEntity     = 0x02
	tokStrI       = 0x03
	tokLiteral    = 0x04
	tokOpaque     = 0xC3
	contentBit    = 0x40
	attrBit       = 0x80
)

// inlineStack is the element stack depth kept inside the Decoder; deeper
// documents (only possible with a raised MaxDepth) grow a slice once.
const inlineStack = 64

type decState uint8

const (
	stHeader decState = iota // header not read yet
	stBody                   // before or inside the root element
	stDone                   // root closed and input consumed: io.EOF
)

// Decoder is a pull tokenizer over one WBXML body held in memory. It starts no
// goroutine, builds no tree and, once created, allocates nothing in Next or
// Skip. A zero Decoder is ready for use after Reset. It is not safe for
// concurrent use.
type Decoder struct {
	data     []byte
	pos      int
	page     uint8
	state    decState
	rootSeen bool
	err      error
	limits   Limits
	stack    []Tag
	stackBuf [inlineStack]Tag
}

// NewDecoder returns a Decoder reading data with DefaultLimits.
func NewDecoder(data []byte) *Decoder {
	d := new(Decoder)
	d.Reset(data)
	return d
}

// Reset makes d read data from the beginning, keeping its limits. It does not
// allocate.
func (d *Decoder) Reset(data []byte) {
	l := d.limits
	*d = Decoder{data: data, limits: l.withDefaults()}
	d.stack = d.stackBuf[:0]
}

// SetLimits replaces the limits; zero fields take the DefaultLimits value.
// Call it before the first Next.
func (d *Decoder) SetLimits(l Limits) { d.limits = l.withDefaults() }

// Depth returns the number of open elements.
func (d *Decoder) Depth() int { return len(d.stack) }

// Offset returns the byte offset of the next unread byte.
func (d *Decoder) Offset() int { return d.pos }

func (d *Decoder) fail(off int, code ErrorCode, msg string) error {
	d.err = &SyntaxError{Offset: off, Code: code, Msg: msg}
	return d.err
}

// Next returns the next token. The first call reads and validates the header.
// After the root element has closed and the input is exhausted it returns
// io.EOF. Errors are *SyntaxError and are sticky: every later call returns the
// same error.
func (d *Decoder) Next() (Token, error) {
	if d.err != nil {
		return Token{}, d.err
	}
	if d.state == stHeader {
		if err := d.readHeader(); err != nil {
			return Token{}, err
		}
	}
	for {
		if d.state == stDone {
			return Token{}, io.EOF
		}
		if d.pos >= len(d.data) {
			if !d.rootSeen {
				return Token{}, d.fail(d.pos, ErrNoRoot, "body has no root element")
			}
			return Token{}, d.fail(d.pos, ErrUnclosed, "input ended with elements open")
		}
		start := d.pos
		b := d.data[d.pos]
		if d.rootSeen && len(d.stack) == 0 {
			return Token{}, d.fail(start, ErrTrailingData, "data after the root element")
		}
		switch b {
		case tokSwitchPage:
			if d.pos+1 >= len(d.data) {
				return Token{}, d.fail(start, ErrTruncated, "SWITCH_PAGE without page number")
			}
			p := d.data[d.pos+1]
			if p >= NumPages {
				return Token{}, d.fail(d.pos+1, ErrUnknownPage, "SWITCH_PAGE to unknown code page "+hexByte(p))
			}
			d.page = p
			d.pos += 2
			continue
		case tokEnd:
			if len(d.stack) == 0 {
				return Token{}, d.fail(start, ErrUnexpectedEnd, "END with no open element")
			}
			d.pos++
			t := d.stack[len(d.stack)-1]
			d.stack = d.stack[:len(d.stack)-1]
			if len(d.stack) == 0 && d.pos == len(d.data) {
				d.state = stDone
			}
			return Token{Kind: EndTag, Tag: t}, nil
		case tokStrI:
			return d.readString(start)
		case tokOpaque:
			return d.readOpaque(start)
		case tokEntity, tokLiteral, 0x40, 0x41, 0x42, 0x43, 0x44,
			0x80, 0x81, 0x82, 0x83, 0x84, 0xC0, 0xC1, 0xC2, 0xC4:
			return Token{}, d.fail(start, ErrUnsupportedToken, "unsupported global token "+hexByte(b))
		}
		if b&attrBit != 0 {
			return Token{}, d.fail(start, ErrUnsupportedToken, "element with attributes "+hexByte(b))
		}
		t := MakeTag(d.page, b)
		d.pos++
		d.rootSeen = true
		if b&contentBit == 0 {
			if len(d.stack) == 0 && d.pos == len(d.data) {
				d.state = stDone
			}
			return Token{Kind: StartTag, Tag: t}, nil
		}
		if len(d.stack) >= d.limits.MaxDepth {
			return Token{}, d.fail(start, ErrTooDeep, "elements nested deeper than the limit")
		}
		d.stack = append(d.stack, t)
		return Token{Kind: StartTag, Tag: t, HasContent: true}, nil
	}
}

// readHeader reads version, public id, charset and string table length.
func (d *Decoder) readHeader() error {
	if len(d.data) > d.limits.MaxSize {
		return d.fail(d.limits.MaxSize, ErrTooLarge, "body larger than the size limit")
	}
	if len(d.data) == 0 {
		return d.fail(0, ErrTruncated, "empty body")
	}
	// Version: WBXML 1.1–1.3 (0x01–0x03). 1.0 has no charset field and is
	// not used by ActiveSync.
	if v := d.data[0]; v < 0x01 || v > 0x03 {
		return d.fail(0, ErrBadHeader, "unsupported WBXML version "+hexByte(v))
	}
	d.pos = 1
	pub, err := d.mbUint32("public id")
	if err != nil {
		return err
	}
	if pub == 0 {
		// publicid 0 is followed by an index into the string table.
		if _, err := d.mbUint32("public id index"); err != nil {
			return err
		}
	}
	csOff := d.pos
	cs, err := d.mbUint32("charset")
	if err != nil {
		return err
	}
	// 106 = UTF-8, 3 = US-ASCII (a subset), 0 = unknown (treated as UTF-8).
	if cs != 106 && cs != 3 && cs != 0 {
		return d.fail(csOff, ErrBadHeader, "unsupported charset (only UTF-8)")
	}
	stOff := d.pos
	st, err := d.mbUint32("string table length")
	if err != nil {
		return err
	}
	if uint64(st) > uint64(len(d.data)-d.pos) {
		return d.fail(stOff, ErrTruncated, "string table longer than the input")
	}
	d.pos += int(st)
	d.state = stBody
	return nil
}

// mbUint32 reads a WBXML multi-byte unsigned integer at d.pos.
func (d *Decoder) mbUint32(what string) (uint32, error) {
	start := d.pos
	var v uint64
	for i := 0; ; i++ {
		if d.pos >= len(d.data) {
			return 0, d.fail(start, ErrTruncated, "input ended inside "+what)
		}
		if i == 5 {
			return 0, d.fail(start, ErrBadMBUint32, what+" longer than 5 bytes")
		}
		b := d.data[d.pos]
		d.pos++
		v = v<<7 | uint64(b&0x7F)
		if b&0x80 == 0 {
			break
		}
	}
	if v > 0xFFFFFFFF {
		return 0, d.fail(start, ErrBadMBUint32, what+" overflows 32 bits")
	}
	return uint32(v), nil
}

func (d *Decoder) readString(start int) (Token, error) {
	if len(d.stack) == 0 {
		return Token{}, d.fail(start, ErrContentOutsideRoot, "string outside any element")
	}
	s := start + 1
	end := -1
	limit := len(d.data)
	if max := s + d.limits.MaxStringLen; max < limit {
		limit = max + 1 // one past: room for the NUL of a string of exactly MaxStringLen
	}
	if i := bytes.IndexByte(d.data[s:limit], 0); i >= 0 {
		end = s + i
	}
	if end < 0 {
		if limit < len(d.data) {
			return Token{}, d.fail(start, ErrStringTooLong, "inline string longer than the limit")
		}
		return Token{}, d.fail(start, ErrUnterminatedString, "inline string without NUL terminator")
	}
	text := d.data[s:end:end] // capped: appending must not overwrite the input
	if !utf8.Valid(text) {
		return Token{}, d.fail(s+invalidUTF8At(text), ErrInvalidUTF8, "inline string is not valid UTF-8")
	}
	d.pos = end + 1
	return Token{Kind: Text, Tag: d.stack[len(d.stack)-1], Data: text}, nil
}

// invalidUTF8At returns the index of the first invalid byte in b.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func (d *Decoder) readOpaque(start int) (Token, error) {
	if len(d.stack) == 0 {
		return Token{}, d.fail(start, ErrContentOutsideRoot, "OPAQUE outside any element")
	}
	d.pos++
	n, err := d.mbUint32("OPAQUE length")
	if err != nil {
		return Token{}, err
	}
	if uint64(n) > uint64(d.limits.MaxOpaqueLen) {
		return Token{}, d.fail(start, ErrOpaqueTooLong, "OPAQUE length above the limit")
	}
	if uint64(n) > uint64(len(d.data)-d.pos) {
		return Token{}, d.fail(start, ErrOpaqueTooLong, "OPAQUE length beyond the end of input")
	}
	b := d.data[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return Token{Kind: Opaque, Tag: d.stack[len(d.stack)-1], Data: b}, nil
}

// Skip consumes tokens up to and including the END of the innermost open
// element: call it right after a StartTag with content to skip that element.
// It validates what it skips exactly as Next does and does not allocate.
func (d *Decoder) Skip() error {
	if d.err != nil {
		return d.err
	}
	target := len(d.stack) - 1
	if target < 0 {
		return &SyntaxError{Offset: d.pos, Code: ErrBadSkip, Msg: "Skip with no open element"}
	}
	for len(d.stack) > target {
		if _, err := d.Next(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
	return nil
}
