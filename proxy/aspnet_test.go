package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a second reader of an EAS request, written from the
// documented rules of the server side rather than from easgate's parser:
// how ASP.NET fills HttpRequest.QueryString (HttpValueCollection.
// FillFromString with HttpUtility.UrlDecode, UTF-8), how IIS presents a
// repeated request header (the values joined with ","), and how Exchange
// reads the base64 query (MS-ASHTTP 2.2.1.1.1.1, decoded as .NET's
// Convert.FromBase64String does). The differential tests compare its
// reading with easgate's: on the request the phone sent, and on the
// request easgate forwards.

// aspRequest is what the server side reads from a request.
type aspRequest struct {
	ok         bool   // false: the server could not read an EAS request from it
	why        string // why not
	base64     bool
	cmd        string // command name (plain) or the base64 command code as "Code<n>"
	user       string
	deviceID   string // hex of the bytes for a binary base64 id
	deviceType string
	version    string
}

// aspValues is an HttpValueCollection: names compared with
// StringComparer.OrdinalIgnoreCase (simple upper-casing), repeated names
// joined with ",", and text without "=" filed under a null name.
type aspValues struct {
	names  []string
	isNull []bool
	values [][]string
}

func aspUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				return r - 'a' + 'A'
			}
			return r
		}
		return unicode.ToUpper(r)
	}, s)
}

func (v *aspValues) add(name string, null bool, value string) {
	for i := range v.names {
		if v.isNull[i] == null && (null || aspUpper(v.names[i]) == aspUpper(name)) {
			v.values[i] = append(v.values[i], value)
			return
		}
	}
	v.names = append(v.names, name)
	v.isNull = append(v.isNull, null)
	v.values = append(v.values, []string{value})
}

// get returns the value of name (values joined with ",") and whether the
// name is present.
func (v *aspValues) get(name string) (string, bool) {
	for i := range v.names {
		if !v.isNull[i] && aspUpper(v.names[i]) == aspUpper(name) {
			return strings.Join(v.values[i], ","), true
		}
	}
	return "", false
}

// aspFillFromString is HttpValueCollection.FillFromString(s, urlencoded:
// true, UTF-8).
func aspFillFromString(s string) *aspValues {
	v := &aspValues{}
	l := len(s)
	for i := 0; i < l; i++ {
		si, ti := i, -1
		for i < l {
			c := s[i]
			if c == '=' {
				if ti < 0 {
					ti = i
				}
			} else if c == '&' {
				break
			}
			i++
		}
		if ti >= 0 {
			v.add(aspURLDecode(s[si:ti]), false, aspURLDecode(s[ti+1:i]))
		} else {
			v.add("", true, aspURLDecode(s[si:i]))
		}
		if i == l-1 && s[i] == '&' {
			v.add("", true, "")
		}
	}
	return v
}

func aspHex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// aspURLDecode is HttpUtility.UrlDecode(s, UTF-8): '+' is a space, %XX a
// byte, %uXXXX a UTF-16 code unit, a '%' starting neither is kept as it is;
// runs of bytes are decoded as UTF-8 with invalid sequences replaced by
// U+FFFD.
func aspURLDecode(s string) string {
	var out []uint16
	var pending []byte
	flush := func() {
		for len(pending) > 0 {
			r, n := utf8.DecodeRune(pending)
			out = utf16.AppendRune(out, r) // RuneError for an invalid sequence
			pending = pending[n:]
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			flush()
			out = append(out, ' ')
			continue
		case c == '%' && i+5 < len(s) && s[i+1] == 'u' && aspHex(s[i+2]) >= 0 && aspHex(s[i+3]) >= 0 && aspHex(s[i+4]) >= 0 && aspHex(s[i+5]) >= 0:
			flush()
			out = append(out, uint16(aspHex(s[i+2])<<12|aspHex(s[i+3])<<8|aspHex(s[i+4])<<4|aspHex(s[i+5])))
			i += 5
			continue
		case c == '%' && i+2 < len(s) && aspHex(s[i+1]) >= 0 && aspHex(s[i+2]) >= 0:
			pending = append(pending, byte(aspHex(s[i+1])<<4|aspHex(s[i+2])))
			i += 2
			continue
		}
		if c < utf8.RuneSelf {
			flush()
			out = append(out, uint16(c))
			continue
		}
		pending = append(pending, c) // raw non-ASCII bytes of the URL, read as UTF-8 too
	}
	flush()
	return string(utf16.Decode(out))
}

// aspHeaders is how IIS hands request headers to ASP.NET: one value per
// name (ASCII case ignored), repeated headers joined with ",".
type aspHeaders map[string]string

func aspParseHeaders(lines []string) aspHeaders {
	h := aspHeaders{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k := strings.ToLower(strings.ReplaceAll(name, "_", "-")) // one server variable for both spellings
		value = strings.TrimSpace(value)
		if prev, ok := h[k]; ok {
			h[k] = prev + "," + value
		} else {
			h[k] = value
		}
	}
	return h
}

// aspRead reads a request target (path?query) and its headers as the
// server side does.
func aspRead(target string, headers []string) aspRequest {
	h := aspParseHeaders(headers)
	query := ""
	if i := strings.IndexByte(target, '?'); i >= 0 {
		query = target[i+1:]
	}
	if j := strings.IndexByte(query, '#'); j >= 0 {
		query = query[:j]
	}
	qs := aspFillFromString(query)
	if cmd, ok := qs.get("Cmd"); ok {
		r := aspRequest{ok: true, cmd: cmd}
		r.user, _ = qs.get("User")
		r.deviceID, _ = qs.get("DeviceId")
		r.deviceType, _ = qs.get("DeviceType")
		r.version = h["ms-asprotocolversion"]
		if r.cmd == "" || r.deviceID == "" || r.deviceType == "" {
			return aspRequest{why: "plain query without Cmd, DeviceId or DeviceType"}
		}
		return r
	}
	return aspReadBase64(query)
}

var aspVersions = map[byte]string{121: "12.1", 140: "14.0", 141: "14.1", 160: "16.0", 161: "16.1"}

// aspReadBase64 decodes the base64 form: the query unescaped as
// Uri.UnescapeDataString does, white space dropped and the rest decoded as
// Convert.FromBase64String does (standard alphabet, padding required).
func aspReadBase64(query string) aspRequest {
	un := aspURLDecodeNoPlus(query)
	un = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, un)
	if len(un)%4 != 0 {
		return aspRequest{why: "base64 length not a multiple of 4"}
	}
	d, err := base64.StdEncoding.Strict().DecodeString(un)
	if err != nil {
		// .NET tolerates non-zero trailing bits; Strict does not.
		d, err = base64.StdEncoding.DecodeString(un)
		if err != nil {
			return aspRequest{why: "not base64"}
		}
	}
	r := aspRequest{ok: true, base64: true}
	if len(d) < 4 {
		return aspRequest{why: "base64 query too short"}
	}
	v, known := aspVersions[d[0]]
	if !known {
		return aspRequest{why: "unknown version byte"}
	}
	r.version = v
	r.cmd = "Code" + strconv.Itoa(int(d[1]))
	i := 4
	lv := func() ([]byte, bool) {
		if i >= len(d) || i+1+int(d[i]) > len(d) {
			return nil, false
		}
		v := d[i+1 : i+1+int(d[i])]
		i += 1 + int(d[i])
		return v, true
	}
	id, ok := lv()
	if !ok || len(id) == 0 {
		return aspRequest{why: "device id"}
	}
	r.deviceID = aspID(id)
	if _, ok := lv(); !ok { // policy key
		return aspRequest{why: "policy key"}
	}
	typ, ok := lv()
	if !ok || len(typ) == 0 {
		return aspRequest{why: "device type"}
	}
	r.deviceType = string(typ)
	for i < len(d) {
		tag := d[i]
		i++
		val, ok := lv()
		if !ok || tag > 8 {
			return aspRequest{why: "parameter"}
		}
		if tag == 8 {
			r.user = string(val)
		}
	}
	return r
}

// aspURLDecodeNoPlus is Uri.UnescapeDataString: %XX sequences decoded as
// UTF-8, '+' kept.
func aspURLDecodeNoPlus(s string) string {
	return aspURLDecode(strings.ReplaceAll(s, "+", "%2B"))
}

// aspID shows a device id as text, or as hex when it is binary.
func aspID(id []byte) string {
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return "hex:" + hex.EncodeToString(id)
		}
	}
	return string(id)
}

// splitRawRequest cuts a raw HTTP/1.1 request into its request target and
// header lines.
func splitRawRequest(raw []byte) (method, target string, headers []string) {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	parts := strings.SplitN(lines[0], " ", 3)
	if len(parts) >= 2 {
		method, target = parts[0], parts[1]
	}
	return method, target, lines[1:]
}
