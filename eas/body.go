package eas

import (
	"errors"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/easgate/easgate/eas/wbxml"
)

// Body readers: small pull-parsers over a request or response body that
// pick out what the proxy needs (DeviceInformation, policy keys, long-poll
// intervals, folder lists) and stop as soon as they have it. They never
// build a tree, never panic, and hold no reference to the body after they
// return (strings they store are copies).

// MaxBodySize is the largest body the readers accept; larger bodies fail
// with a BodyError of kind BodySyntax wrapping wbxml's ErrTooLarge. The
// proxy should not buffer more than this for inspection.
const MaxBodySize = 8 << 20

// MaxDeviceInfoValue is the longest DeviceInformation value, in characters
// (MS-ASCMD §2.2.3.45 and its children: "up to 1024 characters").
const MaxDeviceInfoValue = 1024

// maxShortValue bounds identifiers the readers copy (SyncKey, ServerId,
// CollectionId, Class, PolicyType, DisplayName): all are far shorter in
// practice (SyncKey ≤ 64, ServerId ≤ 64, DisplayName ≤ 256 chars).
const maxShortValue = 1024

// bodyLimits are the wbxml limits used by every reader. EAS bodies are
// shallow (a calendar exception inside a Sync Add is about 11 levels deep).
var bodyLimits = wbxml.Limits{MaxDepth: 32, MaxStringLen: MaxBodySize, MaxOpaqueLen: MaxBodySize, MaxSize: MaxBodySize}

// BodyErrorKind classifies a body reader failure.
type BodyErrorKind uint8

// Kinds of BodyError.
const (
	BodySyntax    BodyErrorKind = iota + 1 // malformed WBXML; Err is the *wbxml.SyntaxError
	BodyEmpty                              // empty body where the command needs one
	BodyWrongRoot                          // root element is not the command's
	BodyBadValue                           // a value that is not what the element allows (number expected, ...)
	BodyTooLong                            // a value over its length limit
	BodyStructure                          // element content where only text is allowed
)

var bodyErrorKindNames = [...]string{
	BodySyntax:    "syntax",
	BodyEmpty:     "empty",
	BodyWrongRoot: "wrong_root",
	BodyBadValue:  "bad_value",
	BodyTooLong:   "too_long",
	BodyStructure: "structure",
}

// String returns a stable snake_case name for logs and metric labels.
func (k BodyErrorKind) String() string {
	if int(k) < len(bodyErrorKindNames) && bodyErrorKindNames[k] != "" {
		return bodyErrorKindNames[k]
	}
	return "kind" + strconv.Itoa(int(k))
}

// BodyError describes why a body reader failed. Command is the body's
// command ("Ping"), Element the element being read in "Namespace:Name" form
// ("Ping:HeartbeatInterval"; "" for errors before the root), Offset the
// byte offset into the body. Msg is a constant phrase: values from the body
// (policy keys, phone numbers, ...) never appear in it.
type BodyError struct {
	Command string
	Element string
	Offset  int
	Kind    BodyErrorKind
	Msg     string
	Err     error // the underlying *wbxml.SyntaxError for BodySyntax
}

// Error formats as "eas: Ping body: Ping:HeartbeatInterval: not a number (offset 12)".
func (e *BodyError) Error() string {
	s := "eas: " + e.Command + " body: "
	if e.Element != "" {
		s += e.Element + ": "
	}
	s += e.Msg
	if e.Err != nil && e.Kind == BodySyntax {
		var se *wbxml.SyntaxError
		if errors.As(e.Err, &se) {
			s += ": " + se.Msg
		}
	}
	return s + " (offset " + strconv.Itoa(e.Offset) + ")"
}

// Unwrap returns the underlying wbxml error, if any.
func (e *BodyError) Unwrap() error { return e.Err }

// bodyReader wraps a wbxml.Decoder with the helpers every reader needs.
// Readers take one from bodyReaderPool: a Decoder keeps its element stack
// in an inline array that its own slice points into, so a Decoder variable
// cannot stay on the stack, and pooling keeps the hot paths free of
// allocations.
type bodyReader struct {
	d       wbxml.Decoder
	cmd     string
	scratch []byte // joins multi-chunk text; nil until needed
}

var bodyReaderPool = sync.Pool{New: func() any { return new(bodyReader) }}

// newBodyReader returns a pooled reader positioned at the start of body.
// Callers must release it (and must not keep slices it returned).
func newBodyReader(cmd string, body []byte) *bodyReader {
	r := bodyReaderPool.Get().(*bodyReader)
	r.init(cmd, body)
	return r
}

// release drops the reference to the body (so the pool does not pin it)
// and returns r to the pool.
func (r *bodyReader) release() {
	r.d.Reset(nil)
	if cap(r.scratch) > 64<<10 {
		r.scratch = nil
	}
	r.scratch = r.scratch[:0]
	bodyReaderPool.Put(r)
}

func (r *bodyReader) init(cmd string, body []byte) {
	r.cmd = cmd
	r.d.Reset(body)
	r.d.SetLimits(bodyLimits)
}

func (r *bodyReader) fail(kind BodyErrorKind, tag wbxml.Tag, off int, msg string) error {
	el := ""
	if tag != 0 {
		el = tag.String()
	}
	return &BodyError{Command: r.cmd, Element: el, Offset: off, Kind: kind, Msg: msg}
}

// next returns the next token; io.EOF before the root closed and wbxml
// errors become a BodySyntax BodyError.
func (r *bodyReader) next() (wbxml.Token, error) {
	off := r.d.Offset()
	tok, err := r.d.Next()
	if err != nil {
		return tok, r.wrap(err, off)
	}
	return tok, nil
}

func (r *bodyReader) wrap(err error, off int) error {
	var se *wbxml.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	msg := "malformed WBXML"
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "body ended early"
	}
	return &BodyError{Command: r.cmd, Offset: off, Kind: BodySyntax, Msg: msg, Err: err}
}

// root reads the root element and checks it is want. The caller handles
// an empty body before calling it.
func (r *bodyReader) root(want wbxml.Tag) (wbxml.Token, error) {
	tok, err := r.next()
	if err != nil {
		return tok, err
	}
	if tok.Kind != wbxml.StartTag || tok.Tag != want {
		// The root tag is the byte just read (after any SWITCH_PAGE).
		return tok, r.fail(BodyWrongRoot, tok.Tag, r.d.Offset()-1, "root element is not "+want.String())
	}
	return tok, nil
}

// eof checks, after the root element closed, that the body ends there.
// Full readers call it; the early-stopping ones do not look further.
func (r *bodyReader) eof() error {
	off := r.d.Offset()
	if _, err := r.d.Next(); err != io.EOF {
		if err == nil {
			return r.fail(BodySyntax, 0, off, "data after the root element")
		}
		return r.wrap(err, off)
	}
	return nil
}

// empty is the error for an empty body where one is required.
func (r *bodyReader) empty() error {
	return &BodyError{Command: r.cmd, Kind: BodyEmpty, Msg: "empty body"}
}

// skip skips the content of an element whose StartTag was just read.
func (r *bodyReader) skip(tok wbxml.Token) error {
	if tok.Kind != wbxml.StartTag || !tok.HasContent {
		return nil
	}
	off := r.d.Offset()
	if err := r.d.Skip(); err != nil {
		return r.wrap(err, off)
	}
	return nil
}

// child returns the next child of the current container. end=true when the
// container closed. Text and opaque data directly inside a container are
// ignored (whitespace from XML converters).
func (r *bodyReader) child() (tok wbxml.Token, end bool, err error) {
	for {
		tok, err = r.next()
		if err != nil {
			return tok, false, err
		}
		switch tok.Kind {
		case wbxml.EndTag:
			return tok, true, nil
		case wbxml.StartTag:
			return tok, false, nil
		}
	}
}

// each calls fn for every child element of start, a StartTag just read,
// until start closes. fn must consume the child (read or skip it). fn does
// not escape, so a closure passed here stays on the stack.
func (r *bodyReader) each(start wbxml.Token, fn func(tok wbxml.Token) error) error {
	if !start.HasContent {
		return nil
	}
	return r.children(fn)
}

// children calls fn for every remaining child element of the current
// container until it closes.
func (r *bodyReader) children(fn func(tok wbxml.Token) error) error {
	for {
		tok, end, err := r.child()
		if err != nil || end {
			return err
		}
		if err := fn(tok); err != nil {
			return err
		}
	}
}

// document reads a whole body: the root element (which must be want), each
// of its children through fn, and the end of the body after the root.
func (r *bodyReader) document(want wbxml.Tag, fn func(tok wbxml.Token) error) error {
	root, err := r.root(want)
	if err != nil {
		return err
	}
	if err := r.each(root, fn); err != nil {
		return err
	}
	return r.eof()
}

// seek skips children of the current container until one tagged a or b,
// whose StartTag it returns unread. found is false when the container
// closed first.
func (r *bodyReader) seek(a, b wbxml.Tag) (tok wbxml.Token, found bool, err error) {
	for {
		tok, end, err := r.child()
		if err != nil || end {
			return tok, false, err
		}
		if tok.Tag == a || tok.Tag == b {
			return tok, true, nil
		}
		if err := r.skip(tok); err != nil {
			return tok, false, err
		}
	}
}

// seekRoot reads the root element (which must be want) and seeks its first
// child tagged a or b. found is false, with a nil error, when the root has
// no such child.
func (r *bodyReader) seekRoot(want, a, b wbxml.Tag) (tok wbxml.Token, found bool, err error) {
	root, err := r.root(want)
	if err != nil || !root.HasContent {
		return root, false, err
	}
	return r.seek(a, b)
}

// text reads the value of a leaf element whose StartTag was just read. An
// empty element gives an empty value. The result aliases the body (or the
// reader's scratch buffer for a value split into several strings) and is
// valid until the next call.
func (r *bodyReader) text(start wbxml.Token) ([]byte, error) {
	if !start.HasContent {
		return nil, nil
	}
	var val []byte
	chunks := 0
	for {
		off := r.d.Offset()
		tok, err := r.next()
		if err != nil {
			return nil, err
		}
		switch tok.Kind {
		case wbxml.Text, wbxml.Opaque:
			switch chunks {
			case 0:
				val = tok.Data
			case 1:
				r.scratch = append(append(r.scratch[:0], val...), tok.Data...)
				val = r.scratch
			default:
				r.scratch = append(r.scratch, tok.Data...)
				val = r.scratch
			}
			chunks++
		case wbxml.StartTag:
			return nil, r.fail(BodyStructure, start.Tag, off, "element inside a value")
		case wbxml.EndTag:
			return val, nil
		}
	}
}

// uint reads a leaf element holding a decimal number ≤ max. Surrounding
// ASCII white space is ignored; an empty value is an error.
func (r *bodyReader) uint(start wbxml.Token, max uint64) (uint64, error) {
	off := r.d.Offset()
	b, err := r.text(start)
	if err != nil {
		return 0, err
	}
	v, ok := bodyParseUint(b, max)
	if !ok {
		return 0, r.fail(BodyBadValue, start.Tag, off, "not a number in range")
	}
	return v, nil
}

// int reads a non-negative decimal int that fits in 31 bits.
func (r *bodyReader) int(start wbxml.Token) (int, error) {
	v, err := r.uint(start, 1<<31-1)
	return int(v), err
}

// str reads a leaf value of at most max characters into *dst, reusing the
// existing string when it is equal (no allocation then).
func (r *bodyReader) str(start wbxml.Token, dst *string, max int) error {
	off := r.d.Offset()
	b, err := r.text(start)
	if err != nil {
		return err
	}
	if len(b) > max && utf8.RuneCount(b) > max {
		return r.fail(BodyTooLong, start.Tag, off, "value longer than "+strconv.Itoa(max)+" characters")
	}
	if *dst != string(b) {
		*dst = string(b)
	}
	return nil
}

// bodyParseUint parses an unsigned decimal number ≤ max, ignoring
// surrounding ASCII white space. It does not allocate.
func bodyParseUint(b []byte, max uint64) (uint64, bool) {
	b = bodyTrim(b)
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

func bodyIsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// ReadDeviceInfo reads Settings > DeviceInformation > Set (14.0) or
// Provision > settings:DeviceInformation > Set (14.1 and later, MS-ASPROV
// §2.2.2.52) into dst. It returns as soon as Set closes. found is false,
// with a nil error, for an empty body, a body of another command, or a
// Settings/Provision body without DeviceInformation > Set; dst is then left
// untouched. When found, dst is first cleared, so it holds exactly the
// reported fields.
//
// Values are copied and may be at most MaxDeviceInfoValue characters;
// longer ones give a BodyError of kind BodyTooLong. On an error dst may be
// partly filled.
func ReadDeviceInfo(body []byte, dst *DeviceInfo) (found bool, err error) {
	r := newBodyReader("Settings", body)
	defer r.release()
	if len(body) == 0 {
		return false, nil
	}
	tok, err := r.next()
	if err != nil {
		return false, err
	}
	switch {
	case tok.Kind == wbxml.StartTag && tok.Tag == wbxml.ProvisionProvision:
		r.cmd = "Provision"
	case tok.Kind == wbxml.StartTag && tok.Tag == wbxml.SettingsSettings:
	default:
		return false, nil
	}
	if !tok.HasContent {
		return false, nil
	}
	for {
		tok, found, err := r.seek(wbxml.SettingsDeviceInformation, wbxml.SettingsDeviceInformation)
		if err != nil || !found {
			return false, err
		}
		if !tok.HasContent {
			continue
		}
		found, err = r.deviceInformation(dst)
		if found || err != nil {
			return found, err
		}
	}
}

// deviceInformation reads the children of DeviceInformation, up to and
// including a Set. found=false when DeviceInformation closed without a Set
// (a Settings response carries only a Status there).
func (r *bodyReader) deviceInformation(dst *DeviceInfo) (found bool, err error) {
	tok, found, err := r.seek(wbxml.SettingsSet, wbxml.SettingsSet)
	if err != nil || !found {
		return false, err
	}
	*dst = DeviceInfo{}
	if !tok.HasContent {
		return true, nil
	}
	return true, r.deviceSet(dst)
}

// deviceSet reads the children of DeviceInformation > Set until it closes.
func (r *bodyReader) deviceSet(dst *DeviceInfo) error {
	return r.children(func(tok wbxml.Token) error {
		var f *string
		switch tok.Tag {
		case wbxml.SettingsModel:
			f = &dst.Model
		case wbxml.SettingsIMEI:
			f = &dst.IMEI
		case wbxml.SettingsFriendlyName:
			f = &dst.FriendlyName
		case wbxml.SettingsOS:
			f = &dst.OS
		case wbxml.SettingsOSLanguage:
			f = &dst.OSLanguage
		case wbxml.SettingsPhoneNumber:
			f = &dst.PhoneNumber
		case wbxml.SettingsUserAgent:
			f = &dst.UserAgent
		case wbxml.SettingsEnableOutboundSMS:
			f = &dst.EnableOutboundSMS
		case wbxml.SettingsMobileOperator:
			f = &dst.MobileOperator
		default:
			return r.skip(tok)
		}
		return r.str(tok, f, MaxDeviceInfoValue)
	})
}
