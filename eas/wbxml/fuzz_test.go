package wbxml

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	files, err := filepath.Glob("testdata/*.wbxml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A few hand-made edge cases.
	f.Add(hdr(0x45, 0xC3, 0x02, 0x00, 0xFF, 0x03, 0x20, 0x00, 0x4B, 0x01, 0x01))
	f.Add(hdr(0x45, 0x00, 0x19, 0x7F, 0x03, 0x0A, 0x00, 0x01, 0x01))
	f.Add([]byte{0x03, 0x00, 0x00, 0x6A, 0x01, 'x', 0x05})
}

// FuzzDecoder tokenizes arbitrary input: it must never panic, every error must
// be a *SyntaxError with an offset inside the input, Data must lie inside the
// input and depth must respect the limit.
func FuzzDecoder(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range []Limits{{}, {MaxDepth: 3, MaxStringLen: 8, MaxOpaqueLen: 8, MaxSize: 256}} {
			for _, skip := range []bool{false, true} {
				var d Decoder
				d.SetLimits(lim)
				d.Reset(data)
				l := lim.withDefaults()
				for i := 0; ; i++ {
					if i > len(data)+1 {
						t.Fatalf("more tokens than input bytes")
					}
					tok, err := d.Next()
					if err == io.EOF {
						if d.Depth() != 0 || d.Offset() != len(data) {
							t.Fatalf("EOF with depth %d offset %d/%d", d.Depth(), d.Offset(), len(data))
						}
						break
					}
					if err != nil {
						checkSyntaxError(t, err, len(data))
						break
					}
					if d.Depth() > l.MaxDepth {
						t.Fatalf("depth %d above limit %d", d.Depth(), l.MaxDepth)
					}
					if len(tok.Data) > 0 && !within(tok.Data, data) {
						t.Fatal("token Data outside the input")
					}
					if tok.Kind == Text && len(tok.Data) > l.MaxStringLen {
						t.Fatalf("string of %d bytes above limit", len(tok.Data))
					}
					if skip && tok.Kind == StartTag && tok.HasContent && i%2 == 1 {
						if err := d.Skip(); err != nil {
							checkSyntaxError(t, err, len(data))
							break
						}
					}
				}
			}
		}
	})
}

func checkSyntaxError(t *testing.T, err error, n int) {
	t.Helper()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not *SyntaxError", err, err)
	}
	if se.Code == 0 || se.Offset < 0 || se.Offset > n {
		t.Fatalf("bad error %+v for input of %d bytes", se, n)
	}
}

func within(sub, data []byte) bool {
	if len(data) == 0 {
		return false
	}
	start := &data[0]
	end := &data[len(data)-1]
	s := &sub[0]
	e := &sub[len(sub)-1]
	return uintptrOf(s) >= uintptrOf(start) && uintptrOf(e) <= uintptrOf(end)
}

// FuzzRoundTrip: whatever decodes must survive ToXML → FromXML → decode with
// the same tokens, modulo what XML cannot express (see normalize).
func FuzzRoundTrip(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		orig, err := collect(data)
		if err != nil {
			return // not a valid body; FuzzDecoder covers errors
		}
		for _, tok := range orig {
			if tok.Kind == Text && !xmlSafe(tok.Data) {
				return // ToXML replaces characters XML 1.0 cannot carry
			}
		}
		var x1 bytes.Buffer
		if err := ToXML(&x1, data, XMLOptions{}); err != nil {
			t.Fatalf("ToXML failed on decodable input: %v", err)
		}
		w, err := FromXML(bytes.NewReader(x1.Bytes()))
		if err != nil {
			t.Fatalf("FromXML(ToXML) failed: %v\n%s", err, x1.Bytes())
		}
		back, err := collect(w)
		if err != nil {
			t.Fatalf("decoding FromXML output: %v", err)
		}
		a, b := normalize(orig), normalize(back)
		if len(a) != len(b) {
			t.Fatalf("token count %d != %d\n%s", len(a), len(b), x1.Bytes())
		}
		for i := range a {
			if a[i].Kind != b[i].Kind || a[i].Tag != b[i].Tag || a[i].HasContent != b[i].HasContent || !bytes.Equal(a[i].Data, b[i].Data) {
				t.Fatalf("token %d: %+v != %+v\n%s", i, a[i], b[i], x1.Bytes())
			}
		}
		var x2 bytes.Buffer
		if err := ToXML(&x2, w, XMLOptions{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x1.Bytes(), x2.Bytes()) && !bytes.Equal(normXML(t, x1.Bytes()), x2.Bytes()) {
			t.Fatalf("XML not stable:\n%s\n---\n%s", x1.Bytes(), x2.Bytes())
		}
	})
}

// normXML converts once more; the second ToXML output must be a fixed point.
func normXML(t *testing.T, x []byte) []byte {
	w, err := FromXML(bytes.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := ToXML(&b, w, XMLOptions{}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func collect(data []byte) ([]Token, error) {
	d := NewDecoder(data)
	var out []Token
	for {
		tok, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, tok)
	}
}

// normalize rewrites a token stream the way XML flattens it (mirroring
// FromXML): adjacent strings merge; empty strings vanish; whitespace-only text
// next to a child element (or closing an element that has children) is
// indentation; an element with content but no tokens becomes empty.
func normalize(in []Token) []Token {
	type frame struct{ hasChild bool }
	var out []Token
	var stack []frame
	var run []byte
	inRun := false
	flush := func(next Kind) {
		if !inRun {
			return
		}
		inRun = false
		if len(run) == 0 {
			return
		}
		ws := len(bytes.TrimSpace(run)) == 0
		top := &stack[len(stack)-1]
		if ws && (next == StartTag || (next == EndTag && top.hasChild)) {
			run = nil
			return
		}
		out = append(out, Token{Kind: Text, Tag: in[0].Tag, Data: run})
		run = nil
	}
	for _, tok := range in {
		switch tok.Kind {
		case Text:
			if !inRun {
				inRun, run = true, nil
			}
			run = append(run, tok.Data...)
			continue
		case StartTag:
			flush(StartTag)
			if len(stack) > 0 {
				stack[len(stack)-1].hasChild = true
			}
			if tok.HasContent {
				stack = append(stack, frame{})
			}
			out = append(out, Token{Kind: StartTag, Tag: tok.Tag, HasContent: tok.HasContent})
		case Opaque:
			flush(Opaque)
			out = append(out, Token{Kind: Opaque, Data: tok.Data})
		case EndTag:
			flush(EndTag)
			stack = stack[:len(stack)-1]
			if last := &out[len(out)-1]; last.Kind == StartTag && last.HasContent && last.Tag == tok.Tag {
				last.HasContent = false
				continue
			}
			out = append(out, Token{Kind: EndTag, Tag: tok.Tag})
		}
	}
	// Text tokens carry the enclosing tag; it is irrelevant for comparison.
	for i := range out {
		if out[i].Kind == Text {
			out[i].Tag = 0
		}
	}
	return out
}
