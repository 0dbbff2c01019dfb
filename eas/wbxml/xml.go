package wbxml

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// XMLOptions control ToXML.
type XMLOptions struct {
	// Libwbxml makes the output look like `wbxml2xml -l ACTIVESYNC -m 1 -i 2`
	// (Debian libwbxml2): its DOCTYPE line, its element spellings (e.g.
	// Contacts "BusinessCity", Email "Recurrence_Type"), namespaces with a
	// trailing colon (xmlns="AirSync:", "Gal:"), and OPAQUE printed as base64
	// only in the elements libwbxml base64-encodes (see base64Elements) and
	// as raw text elsewhere.
	//
	// libwbxml knows code pages 0–24 only and prints tags it does not know
	// (all of page 25 Find, and a few newer tokens) as <unknown/>, losing the
	// name. ToXML does not copy that: it prints the MS-ASWBXML name in the
	// page's namespace with a trailing colon (e.g. xmlns="Find:"), so the
	// output can still be converted back.
	Libwbxml bool
	// Indent is the indentation per level; "" means two spaces.
	Indent string
	// Limits bound the decoder; zero fields take DefaultLimits.
	Limits Limits
}

// opaquePI is the processing-instruction target ToXML uses for OPAQUE data in
// the default output: <?opaque BASE64?>. FromXML turns it back into OPAQUE.
const opaquePI = "opaque"

// base64Elements are the elements whose OPAQUE content libwbxml prints as
// base64 and whose text content xml2wbxml base64-decodes into OPAQUE.
// (Measured against libwbxml2 0.11 by decoding OPAQUE under every tag.)
var base64Elements = map[Tag]bool{
	ResolveRecipientsData:        true,
	SearchConversationId:         true,
	GALData:                      true,
	AirSyncBaseContent:           true,
	ItemOperationsConversationId: true,
	ComposeMailMime:              true,
	Email2ConversationId:         true,
	Email2ConversationIndex:      true,
}

// ToXML decodes the WBXML body data and writes it to w as indented XML.
// Default output uses MS-ASWBXML names, xmlns="Namespace" on the root and on
// every element whose page differs from its parent's, and <?opaque BASE64?>
// for OPAQUE data; FromXML reverses it exactly. Tags without a table entry
// print as Token0xNN. Text is escaped; characters XML 1.0 cannot carry (most
// C0 controls) are replaced by U+FFFD.
func ToXML(w io.Writer, data []byte, opts XMLOptions) error {
	var d Decoder
	d.SetLimits(opts.Limits)
	d.Reset(data)
	var toks []Token
	for {
		t, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		toks = append(toks, t)
	}
	indent := opts.Indent
	if indent == "" {
		indent = "  "
	}
	bw := bufio.NewWriter(w)
	p := xmlPrinter{w: bw, toks: toks, lib: opts.Libwbxml, indent: indent}
	if p.lib {
		bw.WriteString("<?xml version=\"1.0\"?>\n<!DOCTYPE ActiveSync PUBLIC \"-//MICROSOFT//DTD ActiveSync//EN\" \"http://www.microsoft.com/\">\n")
	} else {
		bw.WriteString("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n")
	}
	p.element(0, 0, 0xFF, true)
	bw.WriteByte('\n')
	return bw.Flush()
}

type xmlPrinter struct {
	w      *bufio.Writer
	toks   []Token
	lib    bool
	indent string
}

// element prints the element starting at toks[i] and returns the index after
// it. parentPage is 0xFF for the root. pretty is false inside mixed content.
func (p *xmlPrinter) element(i, level int, parentPage uint8, pretty bool) int {
	t := p.toks[i]
	name := p.name(t.Tag)
	if pretty {
		p.pad(level)
	}
	p.w.WriteByte('<')
	p.w.WriteString(name)
	if t.Tag.Page() != parentPage {
		p.w.WriteString(` xmlns="`)
		p.w.WriteString(p.namespace(t.Tag.Page()))
		p.w.WriteByte('"')
	}
	if !t.HasContent {
		p.w.WriteString("/>")
		return i + 1
	}
	p.w.WriteByte('>')
	// Find the content range and whether it mixes text with elements.
	j, depth := i+1, 0
	hasElem, hasText := false, false
	for ; ; j++ {
		c := p.toks[j]
		if c.Kind == EndTag {
			if depth == 0 {
				break
			}
			depth--
			continue
		}
		if depth == 0 {
			if c.Kind == StartTag {
				hasElem = true
			} else {
				hasText = true
			}
		}
		if c.Kind == StartTag && c.HasContent {
			depth++
		}
	}
	end := j
	childPretty := pretty && hasElem && !hasText
	k := i + 1
	for k < end {
		c := p.toks[k]
		switch c.Kind {
		case StartTag:
			if childPretty {
				p.w.WriteByte('\n')
			}
			k = p.element(k, level+1, t.Tag.Page(), childPretty)
		case Text:
			writeEscaped(p.w, c.Data)
			k++
		case Opaque:
			p.opaque(t.Tag, c.Data, hasElem || end-(i+1) > 1)
			k++
		}
	}
	if childPretty {
		p.w.WriteByte('\n')
		p.pad(level)
	}
	p.w.WriteString("</")
	p.w.WriteString(name)
	p.w.WriteByte('>')
	return end + 1
}

func (p *xmlPrinter) opaque(parent Tag, b []byte, mixed bool) {
	if p.lib {
		if base64Elements[parent] && !mixed {
			p.w.WriteString(base64.StdEncoding.EncodeToString(b))
			return
		}
		if !base64Elements[parent] && xmlSafe(b) {
			writeEscaped(p.w, b)
			return
		}
	}
	p.w.WriteString("<?" + opaquePI + " ")
	p.w.WriteString(base64.StdEncoding.EncodeToString(b))
	p.w.WriteString("?>")
}

func (p *xmlPrinter) pad(level int) {
	for range level {
		p.w.WriteString(p.indent)
	}
}

func (p *xmlPrinter) name(t Tag) string {
	if p.lib {
		if n := t.libName(); n != "" {
			return n
		}
	}
	if n := t.Name(); n != "" {
		return n
	}
	return unknownName(t)
}

func (p *xmlPrinter) namespace(page uint8) string {
	if p.lib {
		if ns := pageLibNamespace[page]; ns != "" {
			return ns + ":"
		}
		return pageNamespace[page] + ":"
	}
	return pageNamespace[page]
}

// xmlChar reports whether r may appear in an XML 1.0 document.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}

// xmlSafe reports whether b is UTF-8 made only of XML 1.0 characters.
func xmlSafe(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if (r == utf8.RuneError && n <= 1) || !xmlChar(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

// writeEscaped writes text escaped for XML character data. Newlines and tabs
// stay literal for readability; CR is escaped so XML line-end normalisation
// cannot change it.
func writeEscaped(w *bufio.Writer, b []byte) {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == '&':
			w.WriteString("&amp;")
		case r == '<':
			w.WriteString("&lt;")
		case r == '>':
			w.WriteString("&gt;")
		case r == '\r':
			w.WriteString("&#xD;")
		case (r == utf8.RuneError && n <= 1) || !xmlChar(r):
			w.WriteString("\uFFFD")
		default:
			w.Write(b[:n])
		}
		b = b[n:]
	}
}

// FromXML reads an XML ActiveSync document and returns its WBXML encoding
// (with the 03 01 6A 00 header). It accepts ToXML's output in both modes and
// the XML that xml2wbxml accepts: the DOCTYPE line, namespaces given by
// xmlns="Ns" or xmlns="Ns:" or by prefixes, MS-ASWBXML or libwbxml element
// spellings, and Token0xNN for tags without a name.
//
// Text of an element that has no child elements is kept verbatim (an element
// with no content at all becomes an empty tag); whitespace-only text between
// child elements is indentation and is dropped. <?opaque BASE64?> becomes
// OPAQUE. As xml2wbxml does, the text of a base64Elements element written in
// a libwbxml-style namespace (trailing colon) is base64-decoded into OPAQUE.
// Errors are *SyntaxError with code ErrXML and the XML byte offset, or the
// Encoder's error.
func FromXML(r io.Reader) ([]byte, error) {
	dec := xml.NewDecoder(r)
	enc := NewEncoder(nil)
	enc.Header()
	type frame struct {
		tag      Tag
		lib      bool // namespace written libwbxml style
		started  bool // Start (not Empty) already emitted
		hasChild bool
		text     []byte // pending character data
	}
	var stack []frame
	rootDone := false
	xmlErr := func(msg string) error {
		return &SyntaxError{Offset: int(dec.InputOffset()), Code: ErrXML, Msg: msg}
	}
	open := func(f *frame) {
		if !f.started {
			enc.Start(f.tag)
			f.started = true
		}
	}
	// flushText emits pending text of f; whitespace-only text is dropped when
	// the element has (or is about to get) child elements.
	flushText := func(f *frame, beforeChild bool) error {
		if len(f.text) == 0 {
			return nil
		}
		if (beforeChild || f.hasChild) && len(bytes.TrimSpace(f.text)) == 0 {
			f.text = f.text[:0]
			return nil
		}
		open(f)
		if f.lib && base64Elements[f.tag] && !f.hasChild && !beforeChild {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(f.text)))
			if err != nil {
				return xmlErr("element " + f.tag.String() + " holds invalid base64")
			}
			enc.Opaque(raw)
		} else {
			enc.Text(f.text)
		}
		f.text = f.text[:0]
		return nil
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, xmlErr("XML syntax: " + se.Msg)
			}
			return nil, xmlErr("XML: " + err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if rootDone {
				return nil, xmlErr("second root element <" + t.Name.Local + ">")
			}
			if t.Name.Space == "" {
				return nil, xmlErr("element <" + t.Name.Local + "> has no namespace")
			}
			page, ok := LookupPage(t.Name.Space)
			if !ok {
				return nil, xmlErr("unknown namespace " + quote(t.Name.Space))
			}
			tokn, ok := tokenByName[page][t.Name.Local]
			if !ok {
				tokn, ok = parseUnknownName(t.Name.Local)
			}
			if !ok {
				return nil, xmlErr("unknown element <" + t.Name.Local + "> in namespace " + quote(t.Name.Space))
			}
			for _, a := range t.Attr {
				if a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
					return nil, xmlErr("attribute " + quote(a.Name.Local) + " on <" + t.Name.Local + "> (WBXML for ActiveSync has no attributes)")
				}
			}
			if n := len(stack); n > 0 {
				parent := &stack[n-1]
				if err := flushText(parent, true); err != nil {
					return nil, err
				}
				parent.hasChild = true
				open(parent)
			}
			if len(stack) >= DefaultLimits.MaxDepth {
				return nil, xmlErr("elements nested deeper than the limit")
			}
			stack = append(stack, frame{tag: MakeTag(page, tokn), lib: strings.HasSuffix(t.Name.Space, ":")})
		case xml.EndElement:
			f := &stack[len(stack)-1]
			if err := flushText(f, false); err != nil {
				return nil, err
			}
			if f.started {
				enc.End()
			} else {
				enc.Empty(f.tag)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				rootDone = true
			}
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, xmlErr("text outside the root element")
				}
				continue
			}
			f := &stack[len(stack)-1]
			f.text = append(f.text, t...)
		case xml.ProcInst:
			if t.Target != opaquePI {
				continue // <?xml ...?> and foreign instructions
			}
			if len(stack) == 0 {
				return nil, xmlErr("<?opaque?> outside the root element")
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(t.Inst)))
			if err != nil {
				return nil, xmlErr("<?opaque?> holds invalid base64")
			}
			f := &stack[len(stack)-1]
			// Text before an opaque item is content, even if whitespace.
			if len(f.text) > 0 {
				open(f)
				enc.Text(f.text)
				f.text = f.text[:0]
			}
			open(f)
			enc.Opaque(raw)
		case xml.Comment, xml.Directive:
			// DOCTYPE and comments carry nothing for WBXML.
		}
		if err := enc.Err(); err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				return nil, xmlErr(se.Msg)
			}
			return nil, err
		}
	}
	if !rootDone {
		return nil, xmlErr("document has no complete root element")
	}
	return enc.Bytes(), nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + s + `"`
}
