package proxy

import "bytes"

// framingError describes a request whose message framing is ambiguous, the
// raw material of request smuggling. Such requests get 400 and the
// connection is closed.
type framingError string

func (e framingError) Error() string { return "proxy: " + string(e) }

const (
	errBothLengths   = framingError("both Content-Length and Transfer-Encoding")
	errDupLength     = framingError("more than one Content-Length")
	errBadLength     = framingError("invalid Content-Length")
	errDupEncoding   = framingError("more than one Transfer-Encoding")
	errBadEncoding   = framingError("Transfer-Encoding other than chunked")
	errEncodingHTTP1 = framingError("Transfer-Encoding in an HTTP/1.0 request")
	errBadHeaderLine = framingError("malformed header line")
	errDupHeader     = framingError("a header easgate reads is repeated (Authorization, Host, User-Agent, Content-Type, MS-ASProtocolVersion, X-MS-PolicyKey or MS-ASAcceptMultiPart)")
	errUnderscore    = framingError("a header easgate reads is spelt with '_' for '-' (IIS reads both as one server variable)")
)

// onceHeaders are the headers easgate reads to decide. A second copy would
// be a second reading: easgate reads the first, IIS joins them with a
// comma, fasthttp keeps one of them. Such requests are refused.
var onceHeaders = [...]string{"Authorization", "Host", "User-Agent", "Content-Type",
	"MS-ASProtocolVersion", "X-MS-PolicyKey", "MS-ASAcceptMultiPart"}

// onceBit is the bit of name in onceHeaders, or 0; underscore is set when
// name is one of them spelt with '_' for '-' ("MS_ASProtocolVersion"),
// which easgate does not read and IIS reads as the same server variable.
func onceBit(name []byte) (bit uint8, underscore bool) {
	switch len(name) {
	case 4, 10, 12, 13, 14, 20:
	default:
		return 0, false
	}
	// onceHeaders hold no '_', so equalFoldDash matches both spellings.
	for i, h := range onceHeaders {
		if len(h) == len(name) && equalFoldDash(name, h) {
			return 1 << i, bytes.IndexByte(name, '_') >= 0
		}
	}
	return 0, false
}

// equalFoldDash is asciiEqualFold with '_' in b read as '-'.
func equalFoldDash(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '_' {
			c = '-'
		}
		if lowerByte(c) != lowerByte(s[i]) {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// checkFraming inspects the request's header block exactly as received
// (fasthttp normalises some of these headers away before the handler sees
// them) and refuses anything a front end and a back end could read
// differently: Content-Length together with Transfer-Encoding, repeated or
// non-numeric Content-Length, repeated Transfer-Encoding, any coding other
// than a lone "chunked", Transfer-Encoding on HTTP/1.0, header names with
// whitespace before the colon, and a second copy of a header easgate reads
// to decide (onceHeaders). It does not allocate.
func checkFraming(raw []byte, http11 bool) error {
	_, err := scanHeaders(raw, http11)
	return err
}

// Kinds of headers only easgate may set, found by scanHeaders.
const (
	foreignUnderscore = 1 << iota // a name with '_'
	foreignForwarded              // X-Forwarded-* or Forwarded
)

// scanHeaders is checkFraming that also reports which kinds of headers only
// easgate may set the request carries (foreign*), so that the common
// request, which has none, is not scanned again to remove them.
func scanHeaders(raw []byte, http11 bool) (foreign uint8, err error) {
	var nCL, nTE int
	var once uint8
	for len(raw) > 0 {
		var line []byte
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			line, raw = raw, nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			// The request line, or an obs-fold continuation (fasthttp
			// refuses folding itself); anything else here is malformed.
			if line[0] == ' ' || line[0] == '\t' {
				return foreign, errBadHeaderLine
			}
			continue
		}
		name := line[:colon]
		if c := name[len(name)-1]; c == ' ' || c == '\t' {
			return foreign, errBadHeaderLine
		}
		if bit, underscore := onceBit(name); bit != 0 {
			if underscore {
				return foreign, errUnderscore
			}
			if once&bit != 0 {
				return foreign, errDupHeader
			}
			once |= bit
		}
		if bytes.IndexByte(name, '_') >= 0 {
			foreign |= foreignUnderscore
		}
		if isForwardedHeader(name) {
			foreign |= foreignForwarded
		}
		if len(name) != len("Content-Length") && len(name) != len("Transfer-Encoding") {
			continue // the common case: no need to look at the value
		}
		value := bytes.TrimSpace(line[colon+1:])
		switch {
		case asciiEqualFold(name, "Content-Length"):
			nCL++
			if nCL > 1 {
				return foreign, errDupLength
			}
			if len(value) == 0 || len(value) > 18 {
				return foreign, errBadLength
			}
			for _, c := range value {
				if c < '0' || c > '9' {
					return foreign, errBadLength
				}
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			nTE++
			if nTE > 1 {
				return foreign, errDupEncoding
			}
			if !asciiEqualFold(value, "chunked") {
				return foreign, errBadEncoding
			}
		}
	}
	if nTE > 0 && nCL > 0 {
		return foreign, errBothLengths
	}
	if nTE > 0 && !http11 {
		return foreign, errEncodingHTTP1
	}
	return foreign, nil
}

// asciiEqualFold reports whether b equals s ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether b starts with s ignoring ASCII case.
func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && asciiEqualFold(b[:len(s)], s)
}
