package eas

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// This file reads and writes the two query forms of MS-ASHTTP
// §2.2.1.1.1: the plain text form (§2.2.1.1.1.2) and the base64 form
// (§2.2.1.1.1.1; layout in PROTOCOL.md §1.3).

// Plain-query parameters, in the order AppendPlainQuery writes them.
const (
	reqPCmd = iota
	reqPUser
	reqPDeviceID
	reqPDeviceType
	reqPAttachmentName
	reqPCollectionID
	reqPItemID
	reqPLongID
	reqPOccurrence
	reqPSaveInSent
	reqPAcceptMultiPart
	reqPCount
)

var reqPlainNames = [reqPCount]string{
	"Cmd", "User", "DeviceId", "DeviceType", "AttachmentName", "CollectionId",
	"ItemId", "LongId", "Occurrence", "SaveInSent", "AcceptMultiPart",
}

// Base64 parameter tags (MS-ASHTTP §2.2.1.1.1.1.3).
const (
	reqTagAttachmentName = 0
	reqTagCollectionID   = 1
	reqTagCollectionName = 2 // deprecated: accepted and ignored
	reqTagItemID         = 3
	reqTagLongID         = 4
	reqTagParentID       = 5 // deprecated: accepted and ignored
	reqTagOccurrence     = 6
	reqTagOptions        = 7
	reqTagUser           = 8

	reqOptSaveInSent      = 0x01
	reqOptAcceptMultiPart = 0x02
)

var reqTagNames = [...]string{
	"AttachmentName", "CollectionId", "CollectionName", "ItemId", "LongId",
	"ParentId", "Occurrence", "Options", "User",
}

// reqIsBase64Form reports whether q is in the base64 form: no '&' and no
// '=' except a trailing run of padding. A plain query always has "Cmd=".
func reqIsBase64Form(q []byte) bool {
	for i, c := range q {
		switch c {
		case '&':
			return false
		case '=':
			for _, d := range q[i+1:] {
				if d != '=' {
					return false
				}
			}
			return true
		}
	}
	return true
}

// parsePlain reads the plain query form.
//
//   - Parameters are separated by '&'; empty pairs are skipped. A pair
//     without '=' is ErrBadParamName (ASP.NET files its text under a null
//     name: a second reading easgate does not share).
//   - Names must be 1*ALPHA, else ErrBadParamName: ASP.NET percent-decodes
//     names ("Device%49d" is DeviceId to it) and compares them with
//     invariant upper-casing ("Devıceid" with a dotless i is DeviceId to
//     it), so any name easgate could read differently is refused. Names
//     are matched ASCII case-insensitively; unknown names are ignored and
//     never forwarded (the gateway forwards the query rebuilt from what
//     it parsed: AppendPlainQuery).
//   - Values are percent-decoded as IIS/ASP.NET's HttpUtility.UrlDecode
//     does for HttpRequest.QueryString, which is what Exchange reads: "%XX"
//     is a byte and '+' is a space. A '%' not followed by two hex digits is
//     ErrBadPercentEncoding (ASP.NET would keep it literally; a gateway
//     rejects the ambiguity instead).
//   - A known parameter twice is ErrDuplicateParam (ASP.NET would join
//     the values with ',', which is never a valid value).
//   - An empty value is treated as absent, except that an empty Cmd is
//     ErrMissingCmd and an empty DeviceId/DeviceType is ErrInvalidDeviceID/
//     ErrInvalidDeviceType.
//
// Error offsets are into q: the '%' for percent errors, the parameter name
// for duplicates, the start of the value for value errors, len(q) for a
// missing required parameter.
func (r *Request) parsePlain(q []byte, required bool) error {
	var seen uint16
	for i := 0; i <= len(q); {
		j := i
		for j < len(q) && q[j] != '&' {
			j++
		}
		if j > i {
			if err := r.plainPair(q, i, j, &seen); err != nil {
				return err
			}
		}
		i = j + 1
	}
	if !required {
		return nil
	}
	switch {
	case len(r.CommandName) == 0:
		return r.fail(ErrMissingCmd, "Cmd", len(q), "missing")
	case len(r.DeviceID) == 0:
		return r.fail(ErrMissingDeviceID, "DeviceId", len(q), "missing")
	case len(r.DeviceType) == 0:
		return r.fail(ErrMissingDeviceType, "DeviceType", len(q), "missing")
	}
	return nil
}

// plainPair handles q[i:j], one name[=value] pair.
func (r *Request) plainPair(q []byte, i, j int, seen *uint16) error {
	pair := q[i:j]
	name, raw, voff := pair, pair[:0], j
	eq := false
	for k, c := range pair {
		if c == '=' {
			name, raw, voff, eq = pair[:k], pair[k+1:], i+k+1, true
			break
		}
	}
	if !eq {
		return r.fail(ErrBadParamName, "query", i, "parameter without '='")
	}
	if len(name) == 0 {
		return r.fail(ErrBadParamName, "query", i, "empty parameter name")
	}
	for k, c := range name {
		if !reqIsAlpha(c) {
			return r.fail(ErrBadParamName, "query", i+k, "parameter names are letters only")
		}
	}
	idx := -1
	for k := range reqPlainNames {
		if equalFoldASCII(name, reqPlainNames[k]) {
			idx = k
			break
		}
	}
	if idx < 0 {
		return nil
	}
	field := reqPlainNames[idx]
	if *seen&(1<<idx) != 0 {
		return r.fail(ErrDuplicateParam, field, i, "parameter given twice")
	}
	*seen |= 1 << idx
	v, bad := r.percentDecode(raw)
	if bad >= 0 {
		return r.fail(ErrBadPercentEncoding, field, voff+bad, "'%' not followed by two hex digits")
	}
	if !utf8.Valid(v) {
		return r.fail(ErrBadValue, field, voff, "value is not valid UTF-8")
	}
	if len(v) == 0 {
		if idx == reqPCmd {
			return r.fail(ErrMissingCmd, field, voff, "missing")
		}
		if idx == reqPDeviceID {
			return r.fail(ErrInvalidDeviceID, field, voff, "empty")
		}
		if idx == reqPDeviceType {
			return r.fail(ErrInvalidDeviceType, field, voff, "empty")
		}
		return nil
	}
	switch idx {
	case reqPCmd:
		for _, c := range v {
			if !reqIsAlpha(c) {
				return r.fail(ErrBadCommand, field, voff, "command name must be letters only")
			}
		}
		r.setCommandName(v)
		return nil
	case reqPDeviceID:
		if code, msg := reqCheckDeviceID(v, false); code != ErrNone {
			return r.fail(code, field, voff, msg)
		}
		r.DeviceID = v
		return nil
	case reqPDeviceType:
		if code, msg := reqCheckDeviceType(v); code != ErrNone {
			return r.fail(code, field, voff, msg)
		}
		r.DeviceType = v
		return nil
	case reqPSaveInSent, reqPAcceptMultiPart:
		if len(v) != 1 || (reqLower(v[0]) != 't' && reqLower(v[0]) != 'f') {
			return r.fail(ErrBadValue, field, voff, "must be T or F")
		}
		if reqLower(v[0]) == 't' {
			if idx == reqPSaveInSent {
				r.SaveInSent = true
			} else {
				r.AcceptMultiPart = true
			}
		}
		return nil
	}
	limit := MaxParamLen
	if idx == reqPUser {
		limit = MaxUserLen
	}
	if len(v) > limit {
		return r.fail(ErrOversize, field, voff, "value too long")
	}
	if reqHasControl(v) {
		return r.fail(ErrBadValue, field, voff, "control character in value")
	}
	*r.plainField(idx) = v
	return nil
}

func (r *Request) plainField(idx int) *[]byte {
	switch idx {
	case reqPUser:
		return &r.User
	case reqPAttachmentName:
		return &r.AttachmentName
	case reqPCollectionID:
		return &r.CollectionID
	case reqPItemID:
		return &r.ItemID
	case reqPLongID:
		return &r.LongID
	}
	return &r.Occurrence
}

// setCommandName sets Command, CommandName and CommandCode from a plain Cmd.
func (r *Request) setCommandName(v []byte) {
	cmd, _ := ParseCommand(v)
	r.Command = cmd
	r.CommandName = v
	if _, ok := CommandFromCode(byte(cmd)); ok {
		r.CommandCode = byte(cmd)
	}
}

// percentDecode returns raw decoded ('+' → space, %XX → byte). Values
// without '%' or '+' alias raw; others are written to r.qbuf, which is big
// enough because decoding never grows a value and the query is at most
// MaxQueryLen bytes. bad is the offset of a malformed '%', or -1.
func (r *Request) percentDecode(raw []byte) (v []byte, bad int) {
	plain := true
	for _, c := range raw {
		if c == '%' || c == '+' {
			plain = false
			break
		}
	}
	if plain {
		return raw, -1
	}
	start := r.qn
	n := start
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		switch c {
		case '+':
			c = ' '
		case '%':
			if k+2 >= len(raw) {
				return nil, k
			}
			h, ok1 := reqUnhex(raw[k+1])
			l, ok2 := reqUnhex(raw[k+2])
			if !ok1 || !ok2 {
				return nil, k
			}
			c = h<<4 | l
			k += 2
		}
		r.qbuf[n] = c
		n++
	}
	r.qn = n
	return r.qbuf[start:n:n], -1
}

func reqUnhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func reqIsAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

func reqIsDeviceIDChar(c byte) bool {
	return reqIsAlpha(c) || ('0' <= c && c <= '9') || c == '-' || c == '_'
}

func reqHasControl(v []byte) bool {
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// reqCheckDeviceID applies MS-ASHTTP §2.2.1.1.1.2.3 (no commas or special
// characters; ABNF 1*32(ALPHA / DIGIT)). easgate also tolerates '-' and '_'
// (GUID-formatted and word-character IDs some clients send; harmless in
// logs and keys). In the base64 form the spec allows "a string or a GUID":
// a 16-byte ID containing a byte outside printable ASCII is taken as a
// binary GUID and kept raw (MarshalJSON shows it in hex).
func reqCheckDeviceID(v []byte, base64Form bool) (ErrorCode, string) {
	if len(v) == 0 {
		return ErrInvalidDeviceID, "empty"
	}
	if len(v) > MaxDeviceIDLen {
		return ErrInvalidDeviceID, "longer than 32 characters"
	}
	binary := false
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			binary = true
			break
		}
	}
	if binary && base64Form && len(v) == 16 {
		return ErrNone, ""
	}
	for _, c := range v {
		if !reqIsDeviceIDChar(c) {
			return ErrInvalidDeviceID, "only letters, digits, '-' and '_' allowed"
		}
	}
	return ErrNone, ""
}

// reqCheckDeviceType applies 1*VCHAR with easgate's MaxDeviceTypeLen.
func reqCheckDeviceType(v []byte) (ErrorCode, string) {
	if len(v) == 0 {
		return ErrInvalidDeviceType, "empty"
	}
	if len(v) > MaxDeviceTypeLen {
		return ErrInvalidDeviceType, "longer than 64 characters"
	}
	for _, c := range v {
		if c < 0x21 || c > 0x7e {
			return ErrInvalidDeviceType, "only visible ASCII characters allowed"
		}
	}
	return ErrNone, ""
}

// parseBase64 reads the base64 query form.
//
// Accepted encodings: standard base64 (RFC 4648 §4, as the spec requires),
// with or without '=' padding; the URL-safe alphabet ('-' '_') and the
// percent-encoded characters %2B %2F %3D, which clients that URL-encode the
// query produce. Non-zero unused trailing bits are tolerated.
//
// Fields (offsets into the decoded bytes): version (must be a published
// version ≥ 12.1, the only ones allowed to use this form), command code
// (unknown codes give CmdUnknown and CommandName "Code<n>", no error), LE
// locale, DeviceId (length 1–32), policy key length (0 or 4, else
// ErrBadPolicyKey), LE policy key, DeviceType (length 1–64), then
// tag/length/value parameters. Tags 2 and 5 (deprecated CollectionName,
// ParentId) are accepted and ignored; Options (7) must be exactly one byte
// (bits other than 0x01 SaveInSent and 0x02 AcceptMultiPart are ignored);
// any other tag is ErrUnknownParam and a repeated tag ErrDuplicateParam:
// a parameter easgate cannot interpret is not forwarded blindly. The
// headers MS-ASProtocolVersion and X-MS-PolicyKey are not read in this
// form; Parse refuses them when they say something else than the query.
//
// ErrBadBase64 offsets are into the raw query; ErrTruncated offsets point
// at the length byte whose length runs past the end (or at the end, where a
// length byte or field was expected).
func (r *Request) parseBase64(q []byte) error {
	n, bad, ok := reqB64Decode(r.b64[:], q, true)
	if !ok {
		return r.fail(ErrBadBase64, "query", bad, "not a valid base64 query")
	}
	d := r.b64[:n:n]
	r.Base64 = true
	for _, c := range q {
		if c == '%' {
			r.base64Escaped = true
			break
		}
	}
	if len(d) < 1 {
		return r.fail(ErrTruncated, "ProtocolVersion", 0, "missing")
	}
	v := Version(d[0])
	if v < V121 || !v.Known() {
		return r.fail(ErrBadVersion, "ProtocolVersion", 0, "not a protocol version that may use the base64 query (12.1 or later)")
	}
	r.Version = v
	if len(d) < 2 {
		return r.fail(ErrTruncated, "CommandCode", 1, "missing")
	}
	r.CommandCode = d[1]
	if cmd, ok := CommandFromCode(d[1]); ok {
		r.Command = cmd
		r.CommandName = reqCommandNameBytes[cmd]
	} else {
		r.Command = CmdUnknown
		b := append(r.codeName[:0], "Code"...)
		b = strconv.AppendUint(b, uint64(d[1]), 10)
		r.CommandName = b
	}
	if len(d) < 4 {
		return r.fail(ErrTruncated, "Locale", 2, "missing")
	}
	r.Locale = uint16(d[2]) | uint16(d[3])<<8
	i := 4
	id, err := r.b64Field(d, &i, "DeviceId")
	if err != nil {
		return err
	}
	if code, msg := reqCheckDeviceID(id, true); code != ErrNone {
		return r.fail(code, "DeviceId", 4, msg)
	}
	r.DeviceID = id
	if i >= len(d) {
		return r.fail(ErrTruncated, "PolicyKey", i, "missing length")
	}
	switch pl := d[i]; pl {
	case 0:
		i++
	case 4:
		if i+5 > len(d) {
			return r.fail(ErrTruncated, "PolicyKey", i, "length past the end")
		}
		r.PolicyKey = uint32(d[i+1]) | uint32(d[i+2])<<8 | uint32(d[i+3])<<16 | uint32(d[i+4])<<24
		r.HasPolicyKey = true
		i += 5
	default:
		return r.fail(ErrBadPolicyKey, "PolicyKey", i, "length must be 0 or 4")
	}
	tOff := i
	typ, err := r.b64Field(d, &i, "DeviceType")
	if err != nil {
		return err
	}
	if code, msg := reqCheckDeviceType(typ); code != ErrNone {
		return r.fail(code, "DeviceType", tOff, msg)
	}
	r.DeviceType = typ
	var seen uint16
	for i < len(d) {
		tag := d[i]
		if int(tag) >= len(reqTagNames) {
			return r.fail(ErrUnknownParam, "Parameter", i, "unknown parameter tag")
		}
		field := reqTagNames[tag]
		if seen&(1<<tag) != 0 {
			return r.fail(ErrDuplicateParam, field, i, "parameter given twice")
		}
		seen |= 1 << tag
		i++
		lOff := i
		val, err := r.b64Field(d, &i, field)
		if err != nil {
			return err
		}
		switch tag {
		case reqTagCollectionName, reqTagParentID:
			continue
		case reqTagOptions:
			if len(val) != 1 {
				return r.fail(ErrBadValue, field, lOff, "must be one byte")
			}
			r.SaveInSent = val[0]&reqOptSaveInSent != 0
			r.AcceptMultiPart = val[0]&reqOptAcceptMultiPart != 0
			continue
		}
		if reqHasControl(val) {
			return r.fail(ErrBadValue, field, lOff+1, "control character in value")
		}
		if len(val) == 0 {
			continue
		}
		switch tag {
		case reqTagAttachmentName:
			r.AttachmentName = val
		case reqTagCollectionID:
			r.CollectionID = val
		case reqTagItemID:
			r.ItemID = val
		case reqTagLongID:
			r.LongID = val
		case reqTagOccurrence:
			r.Occurrence = val
		case reqTagUser:
			r.User = val
		}
	}
	return nil
}

// b64Field reads a length byte at d[*i] and the value after it.
func (r *Request) b64Field(d []byte, i *int, field string) ([]byte, error) {
	at := *i
	if at >= len(d) {
		return nil, r.fail(ErrTruncated, field, at, "missing length")
	}
	l := int(d[at])
	if at+1+l > len(d) {
		return nil, r.fail(ErrTruncated, field, at, "length past the end")
	}
	*i = at + 1 + l
	return d[at+1 : at+1+l : at+1+l], nil
}

var reqCommandNameBytes = func() (t [int(CmdValidateCert) + 1][]byte) {
	for c := range t {
		if _, ok := CommandFromCode(byte(c)); ok {
			t[c] = []byte(Command(c).String())
		}
	}
	return t
}()

// reqB64Table maps a base64 character to its 6-bit value; 0xFF marks an
// invalid character and bit 0x40 the URL-safe '-' and '_'.
var reqB64Table = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		t[std[i]] = byte(i)
	}
	t['-'], t['_'] = 62|0x40, 63|0x40
	return t
}()

// reqB64Decode decodes src into dst (len(dst) ≥ len(src)*3/4). With query
// set it also accepts the URL-safe alphabet and %2B, %2F, %3D. Padding is
// optional but, when present, must complete the last quantum. On failure
// bad is the offset in src of the offending character.
func reqB64Decode(dst, src []byte, query bool) (n, bad int, ok bool) {
	var acc uint32
	bits, data, pads, padAt := 0, 0, 0, -1
	for i := 0; i < len(src); i++ {
		at := i
		c := src[i]
		if query && c == '%' {
			if i+2 >= len(src) {
				return 0, at, false
			}
			switch {
			case src[i+1] == '2' && (src[i+2] == 'B' || src[i+2] == 'b'):
				c = '+'
			case src[i+1] == '2' && (src[i+2] == 'F' || src[i+2] == 'f'):
				c = '/'
			case src[i+1] == '3' && (src[i+2] == 'D' || src[i+2] == 'd'):
				c = '='
			default:
				return 0, at, false
			}
			i += 2
		}
		if c == '=' {
			if padAt < 0 {
				padAt = at
			}
			pads++
			continue
		}
		if padAt >= 0 {
			return 0, at, false
		}
		v := reqB64Table[c]
		if v == 0xFF || (v&0x40 != 0 && !query) {
			return 0, at, false
		}
		v &^= 0x40
		data++
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
			acc &= 1<<bits - 1
		}
	}
	if data%4 == 1 {
		return 0, len(src), false
	}
	if pads > 0 && (pads > 2 || (data+pads)%4 != 0) {
		return 0, padAt, false
	}
	return n, 0, true
}

// AppendBase64Query appends r in the base64 query form (standard alphabet,
// padded) to dst: version byte r.Version, the command code (r.CommandCode
// when r.Command is CmdUnknown, else r.Command's code), locale, DeviceID,
// the policy key when HasPolicyKey, DeviceType, then AttachmentName,
// CollectionID, ItemID, LongID, Occurrence, Options (when SaveInSent or
// AcceptMultiPart) and User, each only when non-empty.
//
// It returns dst unchanged when r cannot be expressed in this form: a
// command without a base64 code (Find, the legacy commands, OPTIONS) or a
// field longer than 255 bytes. Fields are not otherwise validated, so tests
// can build malformed queries.
func AppendBase64Query(dst []byte, r *Request) []byte {
	code := r.CommandCode
	if r.Command != CmdUnknown {
		if _, ok := CommandFromCode(byte(r.Command)); !ok {
			return dst
		}
		code = byte(r.Command)
	}
	var raw [16 + 2*256 + 7*257]byte
	b := append(raw[:0], byte(r.Version), code, byte(r.Locale), byte(r.Locale>>8))
	var ok bool
	if b, ok = reqAppendLV(b, r.DeviceID); !ok {
		return dst
	}
	if r.HasPolicyKey {
		k := r.PolicyKey
		b = append(b, 4, byte(k), byte(k>>8), byte(k>>16), byte(k>>24))
	} else {
		b = append(b, 0)
	}
	if b, ok = reqAppendLV(b, r.DeviceType); !ok {
		return dst
	}
	params := [...]struct {
		tag byte
		v   []byte
	}{
		{reqTagAttachmentName, r.AttachmentName},
		{reqTagCollectionID, r.CollectionID},
		{reqTagItemID, r.ItemID},
		{reqTagLongID, r.LongID},
		{reqTagOccurrence, r.Occurrence},
	}
	for _, p := range params {
		if len(p.v) == 0 {
			continue
		}
		b = append(b, p.tag)
		if b, ok = reqAppendLV(b, p.v); !ok {
			return dst
		}
	}
	if r.SaveInSent || r.AcceptMultiPart {
		var o byte
		if r.SaveInSent {
			o |= reqOptSaveInSent
		}
		if r.AcceptMultiPart {
			o |= reqOptAcceptMultiPart
		}
		b = append(b, reqTagOptions, 1, o)
	}
	if len(r.User) > 0 {
		b = append(b, reqTagUser)
		if b, ok = reqAppendLV(b, r.User); !ok {
			return dst
		}
	}
	return base64.StdEncoding.AppendEncode(dst, b)
}

// AppendQuery appends the query easgate forwards for r, which Parse filled:
// the parameters it parsed and nothing else, in the form the phone used.
// The base64 form is re-encoded in the standard alphabet with padding, its
// '+', '/' and '=' percent-encoded when the phone percent-encoded its
// query; the deprecated tags easgate ignores are left out. The plain form
// is AppendPlainQuery's. So the CAS executes exactly the request easgate
// decided on: unknown parameters, a second spelling, or bytes easgate did
// not read never reach it.
func AppendQuery(dst []byte, r *Request) []byte {
	if !r.Base64 {
		return AppendPlainQuery(dst, r)
	}
	start := len(dst)
	dst = AppendBase64Query(dst, r)
	if !r.base64Escaped {
		return dst
	}
	extra := 0
	for _, c := range dst[start:] {
		if c == '+' || c == '/' || c == '=' {
			extra += 2
		}
	}
	if extra == 0 {
		return dst
	}
	n := len(dst)
	dst = append(dst, make([]byte, extra)...)[:n+extra]
	w := len(dst)
	for i := n - 1; i >= start; i-- {
		c := dst[i]
		var esc string
		switch c {
		case '+':
			esc = "%2B"
		case '/':
			esc = "%2F"
		case '=':
			esc = "%3D"
		default:
			w--
			dst[w] = c
			continue
		}
		w -= 3
		copy(dst[w:], esc)
	}
	return dst
}

func reqAppendLV(b, v []byte) ([]byte, bool) {
	if len(v) > 255 {
		return b, false
	}
	return append(append(b, byte(len(v))), v...), true
}

// AppendPlainQuery appends r in the plain query form to dst:
// Cmd, User, DeviceId, DeviceType, then the optional parameters, each
// only when non-empty; SaveInSent=T and AcceptMultiPart=T only when set.
// Values are percent-encoded (everything but ALPHA, DIGIT, '-', '.', '_',
// '~'). Cmd is the canonical name for known commands and CommandName
// otherwise; OPTIONS has no Cmd. Version and PolicyKey belong in the
// MS-ASProtocolVersion and X-MS-PolicyKey headers and are not written.
func AppendPlainQuery(dst []byte, r *Request) []byte {
	start := len(dst)
	sep := func() {
		if len(dst) > start {
			dst = append(dst, '&')
		}
	}
	add := func(name string, v []byte) {
		if len(v) == 0 {
			return
		}
		sep()
		dst = append(dst, name...)
		dst = append(dst, '=')
		dst = reqAppendEscaped(dst, v)
	}
	switch {
	case r.Command == CmdOptions:
	case r.Command.Known():
		sep()
		dst = append(dst, "Cmd="...)
		dst = append(dst, r.Command.String()...)
	default:
		add("Cmd", r.CommandName)
	}
	add("User", r.User)
	add("DeviceId", r.DeviceID)
	add("DeviceType", r.DeviceType)
	add("AttachmentName", r.AttachmentName)
	add("CollectionId", r.CollectionID)
	add("ItemId", r.ItemID)
	add("LongId", r.LongID)
	add("Occurrence", r.Occurrence)
	if r.SaveInSent {
		add("SaveInSent", []byte{'T'})
	}
	if r.AcceptMultiPart {
		add("AcceptMultiPart", []byte{'T'})
	}
	return dst
}

func reqAppendEscaped(dst, v []byte) []byte {
	const hexdig = "0123456789ABCDEF"
	for _, c := range v {
		if reqIsAlpha(c) || ('0' <= c && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexdig[c>>4], hexdig[c&15])
	}
	return dst
}
