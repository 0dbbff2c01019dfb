package eas

import (
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Headers is the read side of an HTTP header set. *fasthttp.RequestHeader
// satisfies it (Peek(key string) []byte), and so does HeaderMap. Peek returns
// nil or an empty slice for an absent header. Parse keeps the returned
// slices (UserAgent, ContentType, AuthScheme alias them), so they must stay
// valid as long as the Request is used.
type Headers interface{ Peek(key string) []byte }

// HeaderMap is a Headers backed by a map, for tests and tools. Lookups are
// ASCII case-insensitive. Peek allocates (it converts string to []byte); the
// proxy uses *fasthttp.RequestHeader instead.
type HeaderMap map[string]string

// Peek returns the value of key, matched case-insensitively, or nil.
func (m HeaderMap) Peek(key string) []byte {
	if v, ok := m[key]; ok {
		return []byte(v)
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return []byte(v)
		}
	}
	return nil
}

// Limits applied by Parse. Anything longer is rejected (ErrOversize, or
// ErrInvalidDeviceID/ErrInvalidDeviceType so the answer carries status
// 108/109).
const (
	// MaxQueryLen bounds the raw query (IIS's default maxQueryString is
	// 2048; real EAS queries are under 300 bytes).
	MaxQueryLen = 4096
	// MaxDeviceIDLen is the ABNF limit of MS-ASHTTP §2.2.1.1.1.2
	// (device-id = 1*32(ALPHA / DIGIT)).
	MaxDeviceIDLen = 32
	// MaxDeviceTypeLen is easgate's bound; the spec only says 1*VCHAR.
	MaxDeviceTypeLen = 64
	// MaxUserLen fits an RFC 5321 address (64 + 1 + 255) or DOMAIN\user.
	MaxUserLen = 320
	// MaxParamLen bounds the other plain-query values (AttachmentName,
	// CollectionId, ItemId, LongId, Occurrence). Base64 values are at most
	// 255 bytes by construction.
	MaxParamLen = 1024
	// MaxAuthorizationLen bounds the Authorization header value.
	MaxAuthorizationLen = 2048
)

// Request is one parsed EAS request. Parse into a reused Request allocates
// nothing. Byte-slice fields alias either the caller's input (path, query,
// header values) or storage inside the Request; they are valid until the
// next Parse or Reset, and only as long as the input is. Copying a Request
// by value copies the slices, which still point into the original.
//
// A Request is about 9 KiB because of its decoding scratch space; keep it in
// a per-connection or pooled object rather than on a goroutine stack.
type Request struct {
	Method []byte
	// Command is CmdOptions for OPTIONS and CmdUnknown for a well-formed
	// command name or code that easgate does not know.
	Command Command
	// CommandName is the Cmd value as sent (plain form), or the canonical
	// name (base64 form). An unknown base64 code gets "Code" + decimal code,
	// e.g. "Code23". For OPTIONS it is "OPTIONS".
	CommandName []byte
	// CommandCode is the base64 command code: the raw byte in the base64
	// form; in the plain form the code of Command when it has one, else 0.
	CommandCode uint8
	// Version comes from MS-ASProtocolVersion (plain form) or the version
	// byte (base64 form; the header is then ignored). 0 if absent.
	Version Version
	// Base64 reports the base64 query form.
	Base64 bool
	// base64Escaped: the base64 query had percent-encoded characters
	// (AppendQuery writes them the same way).
	base64Escaped bool
	// Locale is the LCID of the base64 form (0 in the plain form).
	Locale uint16
	// PolicyKey is X-MS-PolicyKey (plain) or the base64 policy key;
	// HasPolicyKey says whether one was sent.
	PolicyKey    uint32
	HasPolicyKey bool

	User, DeviceID, DeviceType []byte

	AttachmentName, CollectionID, ItemID, LongID, Occurrence []byte

	SaveInSent, AcceptMultiPart bool

	UserAgent, ContentType []byte

	// AuthScheme is the Authorization scheme as sent ("Basic", "Bearer",
	// "Negotiate", ...), empty when there is no Authorization header.
	AuthScheme []byte
	// AuthUser and AuthDomain are the Basic user split by SplitUser: "jdoe"
	// and "CORP" for "CORP\jdoe", "jdoe" and "corp.example.com" for
	// "jdoe@corp.example.com". AuthLogin is the whole user name as sent.
	AuthUser, AuthDomain, AuthLogin []byte

	password []byte // Basic password; see Password
	err      ParseError
	qn       int                       // bytes used in qbuf
	qbuf     [MaxQueryLen]byte         // percent-decoded plain values
	b64      [MaxQueryLen / 4 * 3]byte // decoded base64 query (at most 3/4 of the query)
	abuf     [MaxAuthorizationLen]byte // decoded Basic credentials
	codeName [8]byte                   // "Code255"
}

// Reset clears every field (Command becomes CmdUnknown, since the zero
// Command is CmdSync). The scratch space is kept, not zeroed.
func (r *Request) Reset() {
	r.Method = nil
	r.Command = CmdUnknown // not CmdSync (0) until a command is read
	r.CommandName = nil
	r.CommandCode = 0
	r.Version = 0
	r.Base64, r.base64Escaped = false, false
	r.Locale = 0
	r.PolicyKey = 0
	r.HasPolicyKey = false
	r.User, r.DeviceID, r.DeviceType = nil, nil, nil
	r.AttachmentName, r.CollectionID, r.ItemID, r.LongID, r.Occurrence = nil, nil, nil, nil, nil
	r.SaveInSent, r.AcceptMultiPart = false, false
	r.UserAgent, r.ContentType = nil, nil
	r.AuthScheme, r.AuthUser, r.AuthDomain, r.AuthLogin = nil, nil, nil, nil
	r.password = nil
	r.err = ParseError{}
	r.qn = 0
}

// fail records a parse error inside r and returns it; the returned pointer
// is valid until the next Parse/Reset (no allocation).
func (r *Request) fail(code ErrorCode, field string, off int, msg string) error {
	st, hs := code.statuses()
	r.err = ParseError{Field: field, Offset: off, Code: code, Status: st, HTTPStatus: hs, Msg: msg}
	return &r.err
}

// Header names read by Parse.
const (
	HeaderProtocolVersion = "MS-ASProtocolVersion"
	HeaderPolicyKey       = "X-MS-PolicyKey"
	HeaderAcceptMultiPart = "MS-ASAcceptMultiPart"
	HeaderUserAgent       = "User-Agent"
	HeaderContentType     = "Content-Type"
	HeaderAuthorization   = "Authorization"
)

// Parse reads one EAS request: method, URI path, raw query (without '?')
// and headers (h may be nil). It resets r first. It allocates nothing, on
// success and on error; the error is a *ParseError stored inside r (valid
// until the next Parse/Reset).
//
// Rules:
//   - Path: "/Microsoft-Server-ActiveSync" (ASCII case-insensitive) with an
//     optional "/default.eas" or "/Proxy/default.eas" suffix and an optional
//     trailing "/"; anything else is ErrNotEAS.
//   - Method: "POST" or "OPTIONS" (case-sensitive, as HTTP methods are).
//     OPTIONS needs no query; if it has one, it is parsed best-effort (a
//     malformed query is dropped, never an error, because OPTIONS is always
//     allowed) and Command stays CmdOptions.
//   - Query form: base64 when the query has no '&' and no '=' other than
//     trailing padding; plain otherwise (see parsePlain and parseBase64).
//   - POST requires Cmd, DeviceId and DeviceType; User is optional (the
//     base64 form usually omits it; see EffectiveUser).
//   - Headers: MS-ASProtocolVersion and X-MS-PolicyKey are read only for the
//     plain form; MS-ASAcceptMultiPart "T" (either case) sets
//     AcceptMultiPart in both forms; User-Agent, Content-Type as sent;
//     Authorization last (see parseAuthorization), so that on
//     ErrBadAuthorization every other field is filled in. A malformed Basic
//     header is an error for OPTIONS too (IIS answers it with 401 as well).
//   - Limits: see MaxQueryLen and the other Max constants.
func (r *Request) Parse(method, path, rawQuery []byte, h Headers) error {
	r.Reset()
	r.Method = method
	if !reqIsEASPath(path) {
		return r.fail(ErrNotEAS, "path", reqPathMismatch(path), "not an ActiveSync path")
	}
	options := false
	switch string(method) {
	case "POST":
	case "OPTIONS":
		options = true
	default:
		return r.fail(ErrMethod, "method", 0, "method not allowed (POST or OPTIONS)")
	}
	if len(rawQuery) > MaxQueryLen {
		return r.fail(ErrOversize, "query", MaxQueryLen, "query too long")
	}
	if options {
		r.Command = CmdOptions
		r.CommandName = reqOptionsName
		if len(rawQuery) > 0 {
			if err := r.parseQuery(rawQuery, h, false); err != nil {
				r.clearQueryFields()
			}
			r.Command = CmdOptions
			r.CommandName = reqOptionsName
			r.CommandCode = 0
		} else if r.parseVersionHeaders(h) != nil {
			r.clearQueryFields()
		}
	} else {
		if len(rawQuery) == 0 {
			return r.fail(ErrMissingCmd, "Cmd", 0, "missing")
		}
		if err := r.parseQuery(rawQuery, h, true); err != nil {
			return err
		}
	}
	if h == nil {
		return nil
	}
	if v := h.Peek(HeaderAcceptMultiPart); len(v) == 1 && (v[0] == 'T' || v[0] == 't') {
		r.AcceptMultiPart = true
	}
	if v := h.Peek(HeaderUserAgent); len(v) > 0 {
		r.UserAgent = v
	}
	if v := h.Peek(HeaderContentType); len(v) > 0 {
		r.ContentType = v
	}
	if v := h.Peek(HeaderAuthorization); len(v) > 0 {
		return r.parseAuthorization(v)
	}
	return nil
}

var reqOptionsName = []byte("OPTIONS")

// parseQuery dispatches on the query form and, for the plain form, reads
// the version and policy-key headers.
func (r *Request) parseQuery(q []byte, h Headers, required bool) error {
	if reqIsBase64Form(q) {
		if err := r.parseBase64(q); err != nil { // the layout always carries the required fields
			return err
		}
		return r.checkBase64Headers(h)
	}
	if err := r.parsePlain(q, required); err != nil {
		return err
	}
	return r.parseVersionHeaders(h)
}

// checkBase64Headers refuses a base64 query sent with an
// MS-ASProtocolVersion or X-MS-PolicyKey header that says something else:
// the query's values are what easgate decides on, and a server that reads
// the header would be deciding about another request. Matching headers
// are harmless and allowed.
func (r *Request) checkBase64Headers(h Headers) error {
	if h == nil {
		return nil
	}
	if v := h.Peek(HeaderProtocolVersion); len(v) > 0 {
		if ver, ok := ParseVersion(v); !ok || ver != r.Version {
			return r.fail(ErrBadVersion, HeaderProtocolVersion, 0, "differs from the version in the base64 query")
		}
	}
	if v := h.Peek(HeaderPolicyKey); len(v) > 0 {
		if k, _, ok := reqParseUint32(v); !ok || !r.HasPolicyKey || k != r.PolicyKey {
			return r.fail(ErrBadPolicyKey, HeaderPolicyKey, 0, "differs from the policy key in the base64 query")
		}
	}
	return nil
}

// parseVersionHeaders reads MS-ASProtocolVersion and X-MS-PolicyKey.
func (r *Request) parseVersionHeaders(h Headers) error {
	if h == nil {
		return nil
	}
	if v := h.Peek(HeaderProtocolVersion); len(v) > 0 {
		ver, ok := ParseVersion(v)
		if !ok {
			return r.fail(ErrBadVersion, HeaderProtocolVersion, 0, "unknown protocol version")
		}
		r.Version = ver
	}
	if v := h.Peek(HeaderPolicyKey); len(v) > 0 {
		k, off, ok := reqParseUint32(v)
		if !ok {
			return r.fail(ErrBadPolicyKey, HeaderPolicyKey, off, "not a decimal uint32")
		}
		r.PolicyKey, r.HasPolicyKey = k, true
	}
	return nil
}

func (r *Request) clearQueryFields() {
	r.CommandName, r.CommandCode, r.Version, r.Base64, r.base64Escaped, r.Locale = nil, 0, 0, false, false, 0
	r.PolicyKey, r.HasPolicyKey = 0, false
	r.User, r.DeviceID, r.DeviceType = nil, nil, nil
	r.AttachmentName, r.CollectionID, r.ItemID, r.LongID, r.Occurrence = nil, nil, nil, nil, nil
	r.SaveInSent, r.AcceptMultiPart = false, false
	r.err = ParseError{}
}

// reqParseUint32 parses 1–10 decimal digits into a uint32. On failure off
// is the offending byte.
func reqParseUint32(b []byte) (v uint32, off int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	var n uint64
	for i, c := range b {
		if c < '0' || c > '9' {
			return 0, i, false
		}
		n = n*10 + uint64(c-'0')
		if n > 0xFFFFFFFF {
			return 0, i, false
		}
	}
	return uint32(n), 0, true
}

const reqBasePath = "/microsoft-server-activesync"

// reqIsEASPath matches the ActiveSync virtual directory.
func reqIsEASPath(p []byte) bool {
	if len(p) < len(reqBasePath) || !equalFoldASCII(p[:len(reqBasePath)], reqBasePath) {
		return false
	}
	rest := p[len(reqBasePath):]
	switch {
	case len(rest) == 0, len(rest) == 1 && rest[0] == '/':
		return true
	case equalFoldASCII(rest, "/default.eas"), equalFoldASCII(rest, "/proxy/default.eas"):
		return true
	}
	return false
}

// reqPathMismatch returns the offset of the first byte at which p leaves
// every accepted path (for the error offset).
func reqPathMismatch(p []byte) int {
	best := 0
	for _, cand := range [...]string{reqBasePath + "/default.eas", reqBasePath + "/proxy/default.eas"} {
		i := 0
		for i < len(p) && i < len(cand) && reqLower(p[i]) == cand[i] {
			i++
		}
		if i > best {
			best = i
		}
	}
	return best
}

func reqLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// EffectiveUser is the query User, or, when the query has none (the base64
// form may omit it), the Basic user part AuthUser.
func (r *Request) EffectiveUser() []byte {
	if len(r.User) > 0 {
		return r.User
	}
	return r.AuthUser
}

// Password returns the Basic password, for the lockout shield's HMAC only.
// Never log it. It aliases storage inside r and is nil without Basic auth.
func (r *Request) Password() []byte { return r.password }

// reqJSON is the shape of MarshalJSON. No password or Authorization value.
type reqJSON struct {
	Method          string  `json:"method"`
	Command         string  `json:"command"`
	CommandName     string  `json:"command_name,omitempty"`
	CommandCode     *uint8  `json:"command_code,omitempty"`
	Version         string  `json:"version,omitempty"`
	Base64          bool    `json:"base64"`
	Locale          uint16  `json:"locale,omitempty"`
	PolicyKey       *uint32 `json:"policy_key,omitempty"`
	User            string  `json:"user,omitempty"`
	EffectiveUser   string  `json:"effective_user,omitempty"`
	DeviceID        string  `json:"device_id,omitempty"`
	DeviceIDHex     string  `json:"device_id_hex,omitempty"`
	DeviceType      string  `json:"device_type,omitempty"`
	AttachmentName  string  `json:"attachment_name,omitempty"`
	CollectionID    string  `json:"collection_id,omitempty"`
	ItemID          string  `json:"item_id,omitempty"`
	LongID          string  `json:"long_id,omitempty"`
	Occurrence      string  `json:"occurrence,omitempty"`
	SaveInSent      bool    `json:"save_in_sent,omitempty"`
	AcceptMultiPart bool    `json:"accept_multipart,omitempty"`
	UserAgent       string  `json:"user_agent,omitempty"`
	ContentType     string  `json:"content_type,omitempty"`
	AuthScheme      string  `json:"auth_scheme,omitempty"`
	AuthUser        string  `json:"auth_user,omitempty"`
	AuthDomain      string  `json:"auth_domain,omitempty"`
}

// MarshalJSON renders the request for `easgate parse-request`. It never
// includes the password or the Authorization header. A DeviceID that is not
// printable ASCII (a binary GUID in the base64 form) is also given as hex
// in device_id_hex.
func (r *Request) MarshalJSON() ([]byte, error) {
	j := reqJSON{
		Method:          string(r.Method),
		Command:         r.Command.String(),
		CommandName:     string(r.CommandName),
		Version:         r.Version.String(),
		Base64:          r.Base64,
		Locale:          r.Locale,
		User:            string(r.User),
		EffectiveUser:   string(r.EffectiveUser()),
		DeviceID:        string(r.DeviceID),
		DeviceType:      string(r.DeviceType),
		AttachmentName:  string(r.AttachmentName),
		CollectionID:    string(r.CollectionID),
		ItemID:          string(r.ItemID),
		LongID:          string(r.LongID),
		Occurrence:      string(r.Occurrence),
		SaveInSent:      r.SaveInSent,
		AcceptMultiPart: r.AcceptMultiPart,
		UserAgent:       string(r.UserAgent),
		ContentType:     string(r.ContentType),
		AuthScheme:      string(r.AuthScheme),
		AuthUser:        string(r.AuthUser),
		AuthDomain:      string(r.AuthDomain),
	}
	if r.Base64 {
		c := r.CommandCode
		j.CommandCode = &c
	}
	if r.HasPolicyKey {
		k := r.PolicyKey
		j.PolicyKey = &k
	}
	for _, c := range r.DeviceID {
		if c < 0x21 || c > 0x7e {
			j.DeviceIDHex = hex.EncodeToString(r.DeviceID)
			break
		}
	}
	return json.Marshal(j)
}
