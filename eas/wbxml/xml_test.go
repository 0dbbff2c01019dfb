package wbxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.xml from ToXML")

func testdataBodies(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.wbxml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	return files
}

func toXML(t testing.TB, data []byte, opts XMLOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := ToXML(&b, data, opts); err != nil {
		t.Fatalf("ToXML: %v", err)
	}
	return b.String()
}

// TestToXMLGolden pins the default ToXML output of every testdata body.
func TestToXMLGolden(t *testing.T) {
	for _, f := range testdataBodies(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".wbxml")
		got := toXML(t, readTestdata(t, filepath.Base(f)), XMLOptions{})
		golden := filepath.Join("testdata", "golden", name+".xml")
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create)", err)
		}
		if got != string(want) {
			t.Errorf("%s: ToXML differs from %s:\n%s", f, golden, got)
		}
	}
}

// TestXMLRoundTrip: decode→ToXML→FromXML→ToXML is the identity on XML, in
// both modes, and FromXML of the default output restores the exact bytes.
func TestXMLRoundTrip(t *testing.T) {
	for _, f := range testdataBodies(t) {
		data := readTestdata(t, filepath.Base(f))
		for _, lib := range []bool{false, true} {
			opts := XMLOptions{Libwbxml: lib}
			x1 := toXML(t, data, opts)
			w, err := FromXML(strings.NewReader(x1))
			if err != nil {
				t.Fatalf("%s lib=%v: FromXML: %v\n%s", f, lib, err, x1)
			}
			if x2 := toXML(t, w, opts); x2 != x1 {
				t.Errorf("%s lib=%v: XML round trip differs:\n%s\n---\n%s", f, lib, x1, x2)
			}
			if !lib && !bytes.Equal(w, data) {
				t.Errorf("%s: FromXML(ToXML(b)) != b: first difference at byte %d", f, firstDiff(w, data))
			}
		}
	}
}

// TestFromXMLMatchesXml2wbxml: the committed .wbxml files built by xml2wbxml
// from the .xml sources equal FromXML of the same sources.
func TestFromXMLMatchesXml2wbxml(t *testing.T) {
	srcs, _ := filepath.Glob("testdata/*.xml")
	if len(srcs) < 10 {
		t.Fatalf("only %d XML sources", len(srcs))
	}
	for _, src := range srcs {
		x, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromXML(bytes.NewReader(x))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(src, ".xml") + ".wbxml")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: FromXML differs from committed WBXML at byte %d (len %d vs %d)", src, firstDiff(got, want), len(got), len(want))
		}
	}
}

// node is a parsed XML element for tree comparisons.
type node struct {
	space, local, text string
	children           []*node
}

func parseTree(t *testing.T, label string, b []byte) *node {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false // libwbxml may print raw bytes
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: parse: %v\n%s", label, err, b)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &node{space: tk.Name.Space, local: tk.Name.Local}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.text = strings.TrimSpace(n.text)
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tk)
			}
		}
	}
	if root == nil {
		t.Fatalf("%s: no root element\n%s", label, b)
	}
	return root
}

// compareLib compares libwbxml's tree with ours. libwbxml prints tags it does
// not know as <unknown/> and then loses track of namespaces below them.
func compareLib(t *testing.T, file, path string, lib, ours *node, nsReliable bool) {
	t.Helper()
	path += "/" + ours.local
	if lib.local == "unknown" {
		tag, ok := LookupTag(ours.space, ours.local)
		if !ok || tag.libName() != "" {
			t.Errorf("%s %s: libwbxml has <unknown>, ours is a tag libwbxml knows", file, path)
		}
		nsReliable = false
	} else {
		if lib.local != ours.local {
			t.Errorf("%s %s: libwbxml name %q, ours %q", file, path, lib.local, ours.local)
		}
		if nsReliable && lib.space != ours.space {
			t.Errorf("%s %s: libwbxml namespace %q, ours %q", file, path, lib.space, ours.space)
		}
	}
	if lib.text != ours.text {
		t.Errorf("%s %s: libwbxml text %q, ours %q", file, path, lib.text, ours.text)
	}
	if len(lib.children) != len(ours.children) {
		t.Errorf("%s %s: libwbxml has %d children, ours %d", file, path, len(lib.children), len(ours.children))
		return
	}
	for i := range lib.children {
		compareLib(t, file, path, lib.children[i], ours.children[i], nsReliable)
	}
}

// TestLibwbxmlCrossCheck decodes every testdata body with libwbxml's
// wbxml2xml and with ToXML(Libwbxml: true) and compares the XML trees.
func TestLibwbxmlCrossCheck(t *testing.T) {
	bin, err := exec.LookPath("wbxml2xml")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wbxml2xml (Debian libwbxml2-utils) is required when CI=true")
		}
		t.Skip("wbxml2xml not installed (apt-get install libwbxml2-utils); skipping libwbxml cross-check")
	}
	for _, f := range testdataBodies(t) {
		out, err := exec.Command(bin, "-l", "ACTIVESYNC", "-m", "1", "-i", "2", "-o", "-", f).Output()
		if err != nil {
			t.Fatalf("%s: wbxml2xml: %v", f, err)
		}
		// wbxml2xml appends a status line to stdout.
		out = bytes.TrimSuffix(bytes.TrimSpace(out), []byte("wbxml2xml succeeded"))
		ours := toXML(t, readTestdata(t, filepath.Base(f)), XMLOptions{Libwbxml: true})
		lt := parseTree(t, f+" (libwbxml)", out)
		ot := parseTree(t, f+" (ours)", []byte(ours))
		compareLib(t, filepath.Base(f), "", lt, ot, true)
	}
}

func TestToXMLOpaque(t *testing.T) {
	e := NewEncoder(nil)
	e.Header()
	e.Start(ComposeMailSendMail)
	e.Start(ComposeMailMime)
	e.Opaque([]byte("A&<\n"))
	e.End()
	e.Start(ComposeMailClientId)
	e.Opaque([]byte("ab"))
	e.End()
	e.Start(ComposeMailSource)
	e.Opaque([]byte{0xFF, 0x00})
	e.End()
	e.End()
	body := e.Bytes()
	tests := []struct {
		lib  bool
		want []string
	}{
		{false, []string{
			"<Mime><?opaque QSY8Cg==?></Mime>",
			"<ClientId><?opaque YWI=?></ClientId>",
			"<Source><?opaque /wA=?></Source>",
		}},
		{true, []string{
			"<MIME>QSY8Cg==</MIME>",            // libwbxml base64-encodes MIME
			"<ClientId>ab</ClientId>",          // and prints other OPAQUE raw
			"<Source><?opaque /wA=?></Source>", // unless it is not XML text
		}},
	}
	for _, tc := range tests {
		got := toXML(t, body, XMLOptions{Libwbxml: tc.lib})
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("lib=%v: output lacks %q:\n%s", tc.lib, w, got)
			}
		}
		back, err := FromXML(strings.NewReader(got))
		if err != nil {
			t.Fatalf("lib=%v: FromXML: %v", tc.lib, err)
		}
		if !tc.lib && !bytes.Equal(back, body) {
			t.Errorf("default round trip changed bytes:\n% X\n% X", back, body)
		}
	}
}

func TestToXMLEscapingAndShapes(t *testing.T) {
	e := NewEncoder(nil)
	e.Header()
	e.Start(AirSyncSync)
	e.Element(AirSyncSyncKey, "a<b>&c\r\nd\te")
	e.Empty(AirSyncMoreAvailable)
	e.Start(AirSyncCollections) // content but nothing inside
	e.End()
	e.Start(AirSyncCommands) // mixed content stays on one line
	e.String(" x ")
	e.Element(AirSyncAdd, "y")
	e.End()
	e.Start(MakeTag(0, 0x3F))
	e.String("\x01")
	e.End()
	e.End()
	got := toXML(t, e.Bytes(), XMLOptions{Indent: "\t"})
	want := `<?xml version="1.0" encoding="utf-8"?>
<Sync xmlns="AirSync">
	<SyncKey>a&lt;b&gt;&amp;c&#xD;
d	e</SyncKey>
	<MoreAvailable/>
	<Collections></Collections>
	<Commands> x <Add>y</Add></Commands>
	<Token0x3F>` + "\uFFFD" + `</Token0x3F>
</Sync>
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Decode errors come through ToXML unchanged.
	var se *SyntaxError
	if err := ToXML(io.Discard, hdr(0x45), XMLOptions{}); !errors.As(err, &se) || se.Code != ErrUnclosed {
		t.Errorf("ToXML on unclosed input: %v", err)
	}
}

func TestFromXMLAccepts(t *testing.T) {
	want := readTestdata(t, "vector_f_ping_request.wbxml")
	tests := []struct{ name, xml string }{
		{"default namespace", `<Ping xmlns="Ping"><HeartbeatInterval>480</HeartbeatInterval><Folders><Folder><Id>5</Id><Class>Email</Class></Folder></Folders></Ping>`},
		{"libwbxml namespace and DOCTYPE", `<?xml version="1.0"?>
<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" "http://www.microsoft.com/">
<Ping xmlns="Ping:">
  <HeartbeatInterval>480</HeartbeatInterval>
  <Folders>
    <!-- one folder -->
    <Folder>
      <Id>5</Id>
      <Class>Email</Class>
    </Folder>
  </Folders>
</Ping>`},
		{"prefixes", `<p:Ping xmlns:p="Ping"><p:HeartbeatInterval>480</p:HeartbeatInterval><p:Folders><p:Folder><p:Id>5</p:Id><p:Class>Email</p:Class></p:Folder></p:Folders></p:Ping>`},
	}
	for _, tc := range tests {
		got, err := FromXML(strings.NewReader(tc.xml))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got % X\nwant % X", tc.name, got, want)
		}
	}
	// libwbxml spellings and Go page names resolve too.
	got, err := FromXML(strings.NewReader(`<Sync xmlns="AirSync"><Commands><Add><ApplicationData><Recurrence_Type xmlns="Email:">1</Recurrence_Type><BusinessCity xmlns="Contacts">B</BusinessCity><Estimate xmlns="ItemEstimate">1</Estimate></ApplicationData></Add></Commands></Sync>`))
	if err != nil {
		t.Fatal(err)
	}
	x := toXML(t, got, XMLOptions{})
	for _, w := range []string{`<Type xmlns="Email">1</Type>`, `<BusinessAddressCity xmlns="Contacts">B</BusinessAddressCity>`, `<Estimate xmlns="GetItemEstimate">1</Estimate>`} {
		if !strings.Contains(x, w) {
			t.Errorf("missing %s in\n%s", w, x)
		}
	}
}

func TestFromXMLErrors(t *testing.T) {
	tests := []struct{ name, xml, msg string }{
		{"empty", ``, "no complete root"},
		{"no namespace", `<Ping/>`, "no namespace"},
		{"unknown namespace", `<Ping xmlns="Nope"/>`, "unknown namespace"},
		{"unknown element", `<Pong xmlns="Ping"/>`, "unknown element"},
		{"attribute", `<Ping xmlns="Ping" a="1"/>`, "attribute"},
		{"syntax", `<Ping xmlns="Ping"><Status>1</Ping>`, "XML syntax"},
		{"unclosed", `<Ping xmlns="Ping"><Status>1</Status>`, "XML syntax"},
		{"text outside root", `x<Ping xmlns="Ping"/>`, "outside the root"},
		{"two roots", `<Ping xmlns="Ping"/><Ping xmlns="Ping"/>`, "second root"},
		{"bad opaque", `<Ping xmlns="Ping"><?opaque !!?></Ping>`, "invalid base64"},
		{"opaque outside root", `<?opaque QQ==?><Ping xmlns="Ping"/>`, "outside the root"},
		{"bad libwbxml base64", `<SendMail xmlns="ComposeMail:"><MIME>!!</MIME></SendMail>`, "invalid base64"},
		{"NUL", `<Ping xmlns="Ping"><Status>&#0;</Status></Ping>`, ""},
	}
	for _, tc := range tests {
		_, err := FromXML(strings.NewReader(tc.xml))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want *SyntaxError", tc.name, err)
			continue
		}
		if !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("%s: %v, want message containing %q", tc.name, se, tc.msg)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
