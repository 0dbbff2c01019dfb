package eas

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/easgate/easgate/eas/wbxml"
)

const bodyDir = "testdata/bodies"

// bodyHex parses a PROTOCOL.md style hex vector ("03 01 6A 00 ...").
func bodyHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex vector: %v", err)
	}
	return b
}

// bodyXMLNode is a minimal element tree used to encode test bodies.
type bodyXMLNode struct {
	tag      wbxml.Tag
	text     string
	children []*bodyXMLNode
}

// bodyFromXML encodes an EAS XML document (namespaces "AirSync",
// "Settings", ... with or without a trailing colon) with wbxml.Encoder.
// Whitespace-only text is dropped; an element with neither text nor
// children is encoded as empty (<Tag/>).
func bodyFromXML(t testing.TB, src []byte) []byte {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(src))
	var stack []*bodyXMLNode
	var root *bodyXMLNode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("xml: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			tag, ok := wbxml.LookupTag(x.Name.Space, x.Name.Local)
			if !ok {
				t.Fatalf("xml: unknown element %s:%s", x.Name.Space, x.Name.Local)
			}
			n := &bodyXMLNode{tag: tag}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && strings.TrimSpace(string(x)) != "" {
				stack[len(stack)-1].text += string(x)
			}
		}
	}
	if root == nil {
		t.Fatal("xml: no root element")
	}
	e := wbxml.NewEncoder(nil)
	e.Header()
	var enc func(n *bodyXMLNode)
	enc = func(n *bodyXMLNode) {
		if n.text == "" && len(n.children) == 0 {
			e.Empty(n.tag)
			return
		}
		e.Start(n.tag)
		if n.text != "" {
			e.String(n.text)
		}
		for _, c := range n.children {
			enc(c)
		}
		e.End()
	}
	enc(root)
	if err := e.Err(); err != nil {
		t.Fatalf("encode: %v", err)
	}
	return e.Bytes()
}

// bodyDump renders a WBXML body as an indented tree, one element per line,
// for golden files and failure messages.
func bodyDump(data []byte) (string, error) {
	d := wbxml.NewDecoder(data)
	var b strings.Builder
	depth := 0
	for {
		tok, err := d.Next()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		switch tok.Kind {
		case wbxml.StartTag:
			fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", depth), tok.Tag)
			if !tok.HasContent {
				b.WriteString(" (empty)\n")
				continue
			}
			b.WriteString("\n")
			depth++
		case wbxml.EndTag:
			depth--
		case wbxml.Text:
			fmt.Fprintf(&b, "%s%q\n", strings.Repeat("  ", depth), tok.Data)
		case wbxml.Opaque:
			fmt.Fprintf(&b, "%sopaque[%d]\n", strings.Repeat("  ", depth), len(tok.Data))
		}
	}
}

// bodyHexDump formats bytes as space-separated upper-case hex, 32 a line.
func bodyHexDump(b []byte) string {
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			if i%32 == 0 {
				s.WriteByte('\n')
			} else {
				s.WriteByte(' ')
			}
		}
		fmt.Fprintf(&s, "%02X", c)
	}
	return s.String()
}

// bodyFile returns testdata/bodies/name, regenerating it from name's .xml
// source under -update. It fails if the committed file no longer matches
// its source.
func bodyFile(t testing.TB, name string) []byte {
	t.Helper()
	path := filepath.Join(bodyDir, name)
	src, err := os.ReadFile(strings.TrimSuffix(path, ".wbxml") + ".xml")
	if err != nil {
		t.Fatal(err)
	}
	want := bodyFromXML(t, src)
	if bodyUpdating() {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestBody -update ./eas)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: it differs from the encoding of its .xml (run with -update)", path)
	}
	return got
}

// bodyGolden compares got with testdata/bodies/name (hex plus a decoded
// tree), rewriting it under -update.
func bodyGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	tree, err := bodyDump(got)
	if err != nil {
		t.Fatalf("%s: output does not decode: %v\n%s", name, err, tree)
	}
	text := "# hex\n" + bodyHexDump(got) + "\n# tree\n" + tree
	path := filepath.Join(bodyDir, name)
	if bodyUpdating() {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != text {
		t.Errorf("%s differs from golden file.\ngot:\n%s\nwant:\n%s", name, text, want)
	}
}

// bodyErrKind returns the kind of a *BodyError, or 0.
func bodyErrKind(err error) BodyErrorKind {
	var be *BodyError
	if errors.As(err, &be) {
		return be.Kind
	}
	return 0
}
