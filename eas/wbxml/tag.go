package wbxml

import (
	"strconv"
	"strings"
)

//go:generate go run ./internal/gen -in codepages.txt -out tables_gen.go

// Tag identifies an element: its code page in the high byte and its 6-bit
// token (0x05–0x3F, without the 0x40 content bit) in the low byte.
type Tag uint16

// MakeTag returns the Tag for a code page and token. The content bit (0x40)
// and attribute bit (0x80) of token are ignored.
func MakeTag(page, token uint8) Tag {
	return Tag(page)<<8 | Tag(token&0x3F)
}

// Page returns the code page of t.
func (t Tag) Page() uint8 { return uint8(t >> 8) }

// Token returns the token of t within its code page.
func (t Tag) Token() uint8 { return uint8(t) }

// valid reports whether t has a page the tables know and a token in 0x05–0x3F.
func (t Tag) valid() bool {
	return t.Page() < NumPages && t.Token() >= 0x05 && t.Token() <= 0x3F
}

// Name returns the MS-ASWBXML element name, e.g. "Sync", or "" if unknown.
func (t Tag) Name() string {
	if !t.valid() {
		return ""
	}
	return tagNames[t.Page()][t.Token()]
}

// Namespace returns the XML namespace of t's code page, e.g. "AirSync", or ""
// for a page above 25.
func (t Tag) Namespace() string {
	if t.Page() >= NumPages {
		return ""
	}
	return pageNamespace[t.Page()]
}

// libName returns libwbxml's spelling of t ("" when libwbxml does not know it).
func (t Tag) libName() string {
	if !t.valid() {
		return ""
	}
	return libTagNames[t.Page()][t.Token()]
}

// String returns "Namespace:Name", e.g. "AirSync:Sync". Unknown tags print as
// "0xPP:0xTT" with the page and token in hex.
func (t Tag) String() string {
	if n := t.Name(); n != "" {
		return t.Namespace() + ":" + n
	}
	return hexByte(t.Page()) + ":" + hexByte(t.Token())
}

func hexByte(b uint8) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{'0', 'x', digits[b>>4], digits[b&0xF]})
}

// PageNamespace returns the XML namespace of a code page ("" if page > 25).
func PageNamespace(page uint8) string {
	if page >= NumPages {
		return ""
	}
	return pageNamespace[page]
}

// LookupPage returns the code page for a namespace. It accepts the XML
// namespace ("GetItemEstimate"), the Go page name ("ItemEstimate") and the
// libwbxml spelling ("Gal"), each with or without a trailing colon.
func LookupPage(namespace string) (uint8, bool) {
	p, ok := pageByNamespace[strings.TrimSuffix(namespace, ":")]
	return p, ok
}

// LookupTag returns the Tag for an element name in a namespace. The namespace
// is matched as in LookupPage; the name may use the MS-ASWBXML or the libwbxml
// spelling. It does not allocate.
func LookupTag(namespace, name string) (Tag, bool) {
	p, ok := LookupPage(namespace)
	if !ok {
		return 0, false
	}
	tok, ok := tokenByName[p][name]
	if !ok {
		return 0, false
	}
	return MakeTag(p, tok), true
}

// unknownName is how ToXML names a tag without a table entry, e.g. "Token0x3F";
// FromXML parses it back.
func unknownName(t Tag) string { return "Token" + hexByte(t.Token()) }

func parseUnknownName(name string) (uint8, bool) {
	rest, ok := strings.CutPrefix(name, "Token0x")
	if !ok || len(rest) != 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(rest, 16, 8)
	if err != nil || v < 0x05 || v > 0x3F {
		return 0, false
	}
	return uint8(v), true
}
