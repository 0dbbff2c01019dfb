package eas

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/easgate/easgate/eas/wbxml"
)

const settingsDir = "testdata/settings"

// settingsXML encodes testdata/settings/name (an EAS XML document).
func settingsXML(t testing.TB, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(settingsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return bodyFromXML(t, src)
}

// settingsBodies returns every Settings body of the testdata: the XML
// sources of testdata/settings and the Settings files of testdata/bodies.
func settingsBodies(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	srcs, err := filepath.Glob(filepath.Join(settingsDir, "*.xml"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no Settings sources in %s: %v", settingsDir, err)
	}
	for _, p := range srcs {
		out[filepath.Base(p)] = settingsXML(t, filepath.Base(p))
	}
	for _, name := range []string{"settings_request_oof_devinfo.wbxml", "settings_response.wbxml", "vector_b_settings_deviceinfo.wbxml"} {
		out[name] = bodyFile(t, name)
	}
	return out
}

// settingsEncode builds a Settings body: fn writes the root's children.
func settingsEncode(fn func(e *wbxml.Encoder)) []byte {
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.SettingsSettings)
	fn(e)
	e.End()
	return e.Bytes()
}

// settingsReference lists the named properties of a Settings body with a
// bare wbxml.Decoder, independently of the bodyReader helpers, for the
// tests and the fuzz target to compare ReadSettings with. ok is false when
// the body is not a well-formed Settings document.
func settingsReference(body []byte) (props []SettingsProperty, ok bool) {
	d := wbxml.NewDecoder(body)
	d.SetLimits(bodyLimits)
	tok, err := d.Next()
	if err != nil || tok.Kind != wbxml.StartTag || tok.Tag != wbxml.SettingsSettings {
		return nil, false
	}
	if tok.HasContent {
		for {
			tok, err := d.Next()
			if err != nil {
				return nil, false
			}
			if tok.Kind == wbxml.EndTag {
				break
			}
			if tok.Kind != wbxml.StartTag {
				continue
			}
			for _, p := range []SettingsProperty{SettingsOof, SettingsDevicePassword, SettingsDeviceInformation,
				SettingsUserInformation, SettingsRightsManagementInformation} {
				if tok.Tag == p.Tag() {
					props = append(props, p)
				}
			}
			if tok.HasContent {
				if err := d.Skip(); err != nil {
					return nil, false
				}
			}
		}
	}
	if _, err := d.Next(); err != io.EOF {
		return nil, false
	}
	return props, true
}

// settingsCheck verifies the invariants of a ReadSettings result against
// the reference reader and ReadDeviceInfo, for tests and fuzzing.
func settingsCheck(t testing.TB, body []byte, info *SettingsInfo, err error) {
	t.Helper()
	ref, refOK := settingsReference(body)
	if err != nil {
		var be *BodyError
		if !errors.As(err, &be) || be.Command != "Settings" || be.Kind == 0 || be.Msg == "" || be.Offset < 0 || be.Offset > len(body) {
			t.Fatalf("ReadSettings(% X): bad error %#v", body, err)
		}
		if refOK && len(body) > 0 {
			t.Fatalf("ReadSettings(% X) failed (%v) but the reference reads it", body, err)
		}
		return
	}
	if !refOK {
		t.Fatalf("ReadSettings(% X) accepted a body the reference rejects", body)
	}
	if info.NumProperties < 0 || info.NumProperties > MaxSettingsProperties {
		t.Fatalf("NumProperties %d", info.NumProperties)
	}
	want := ref[:min(len(ref), MaxSettingsProperties)]
	if got := info.List(); !slices.Equal(got, want) {
		t.Fatalf("List() = %v, reference %v", got, want)
	}
	for p := SettingsProperty(0); p <= SettingsRightsManagementInformation+1; p++ {
		in := false
		for _, q := range ref {
			in = in || q == p
		}
		if info.Has(p) != in {
			t.Fatalf("Has(%v) = %v, reference %v (% X)", p, info.Has(p), in, body)
		}
	}
	var di DeviceInfo
	if found, derr := ReadDeviceInfo(body, &di); derr == nil && found && !info.Has(SettingsDeviceInformation) {
		t.Fatalf("ReadDeviceInfo found a Set but Has(SettingsDeviceInformation) is false")
	}
}

func TestReadSettings(t *testing.T) {
	const (
		oof = SettingsOof
		pw  = SettingsDevicePassword
		dev = SettingsDeviceInformation
		usr = SettingsUserInformation
		rms = SettingsRightsManagementInformation
	)
	tests := []struct {
		name string
		xml  string // testdata/settings source
		file string // testdata/bodies file
		body []byte
		want []SettingsProperty
	}{
		{name: "iOS DeviceInformation Set (14.0)", xml: "ios_devinfo_140.xml", want: []SettingsProperty{dev}},
		{name: "iOS Oof Set", xml: "ios_oof_set.xml", want: []SettingsProperty{oof}},
		{name: "Outlook Oof, UserInformation, RightsManagementInformation Get", xml: "outlook_get_161.xml",
			want: []SettingsProperty{oof, usr, rms}},
		{name: "Android DevicePassword Set then UserInformation", xml: "android_devicepassword.xml",
			want: []SettingsProperty{pw, usr}},
		{name: "Android Oof, DeviceInformation, UserInformation", file: "settings_request_oof_devinfo.wbxml",
			want: []SettingsProperty{oof, dev, usr}},
		{name: "vector B", file: "vector_b_settings_deviceinfo.wbxml", want: []SettingsProperty{dev}},
		{name: "response: Status skipped", file: "settings_response.wbxml", want: []SettingsProperty{dev}},
		{name: "empty root", body: bodyHex(t, "03 01 6A 00 00 12 05")},
		{name: "root with no children", body: bodyHex(t, "03 01 6A 00 00 12 45 01")},
		{name: "empty properties", body: bodyHex(t, "03 01 6A 00 00 12 45 09 14 16 1D 2B 01"),
			want: []SettingsProperty{oof, pw, dev, usr, rms}},
		{name: "text inside the root ignored", body: bodyHex(t, "03 01 6A 00 00 12 45 03 20 0A 00 09 C3 01 00 01"),
			want: []SettingsProperty{oof}},
		{name: "repeated property listed twice", body: settingsEncode(func(e *wbxml.Encoder) {
			e.Empty(wbxml.SettingsUserInformation)
			e.Empty(wbxml.SettingsOof)
			e.Empty(wbxml.SettingsUserInformation)
		}), want: []SettingsProperty{usr, oof, usr}},
		{name: "unknown children skipped", body: settingsEncode(func(e *wbxml.Encoder) {
			e.Element(wbxml.SettingsStatus, "1")
			e.Start(wbxml.AirSyncStatus) // another code page
			e.Start(wbxml.SettingsOof)   // not a direct child: not listed
			e.End()
			e.End()
			e.Empty(wbxml.SettingsGet)
			e.Empty(wbxml.SettingsRightsManagementInformation)
		}), want: []SettingsProperty{rms}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			switch {
			case tc.xml != "":
				body = settingsXML(t, tc.xml)
			case tc.file != "":
				body = bodyFile(t, tc.file)
			}
			// dst holds a previous, different result: it must be cleared.
			got := SettingsInfo{NumProperties: 3, Properties: [MaxSettingsProperties]SettingsProperty{pw, pw, pw},
				present: 1<<SettingsDevicePassword | 1<<SettingsOof}
			err := ReadSettings(body, &got)
			if err != nil {
				t.Fatalf("ReadSettings: %v", err)
			}
			if list := got.List(); !slices.Equal(list, tc.want) {
				t.Fatalf("List() = %v, want %v", list, tc.want)
			}
			for _, p := range got.Properties[got.NumProperties:] {
				if p != 0 {
					t.Fatalf("stale entry beyond NumProperties: %v", got.Properties)
				}
			}
			want := SettingsInfo{NumProperties: len(tc.want)}
			copy(want.Properties[:], tc.want)
			for _, p := range tc.want {
				want.present |= 1 << p
			}
			if got != want {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			settingsCheck(t, body, &got, err)
		})
	}
}

// TestReadSettingsBound: more properties than MaxSettingsProperties are
// read to the end; the first ones are listed and every one sets its Has
// field, so a DevicePassword after sixteen DeviceInformation elements is
// still reported.
func TestReadSettingsBound(t *testing.T) {
	body := settingsEncode(func(e *wbxml.Encoder) {
		for i := 0; i < MaxSettingsProperties; i++ {
			e.Start(wbxml.SettingsDeviceInformation)
			e.Start(wbxml.SettingsSet)
			e.Element(wbxml.SettingsModel, fmt.Sprint("m", i))
			e.End()
			e.End()
		}
		e.Empty(wbxml.SettingsDevicePassword)
		e.Empty(wbxml.SettingsOof)
	})
	var info SettingsInfo
	if err := ReadSettings(body, &info); err != nil {
		t.Fatal(err)
	}
	if info.NumProperties != MaxSettingsProperties || len(info.List()) != MaxSettingsProperties {
		t.Fatalf("NumProperties %d, List %d", info.NumProperties, len(info.List()))
	}
	for _, p := range info.List() {
		if p != SettingsDeviceInformation {
			t.Fatalf("List() = %v", info.List())
		}
	}
	if !info.Has(SettingsDevicePassword) || !info.Has(SettingsOof) || !info.Has(SettingsDeviceInformation) || info.Has(SettingsUserInformation) {
		t.Fatalf("Has: %+v", info)
	}
	settingsCheck(t, body, &info, nil)
	// A caller-corrupted count does not make List panic.
	for _, n := range []int{-1, MaxSettingsProperties + 1} {
		bad := SettingsInfo{NumProperties: n}
		if l := len(bad.List()); l != max(0, min(n, MaxSettingsProperties)) {
			t.Fatalf("NumProperties %d: List has %d", n, l)
		}
	}
}

func TestReadSettingsErrors(t *testing.T) {
	valid := settingsXML(t, "android_devicepassword.xml")
	pwAt := strings.Index(string(valid), "secret-recovery-pw")
	deep := settingsEncode(func(e *wbxml.Encoder) {
		e.Start(wbxml.SettingsOof)
		for i := 0; i < 40; i++ {
			e.Start(wbxml.SettingsGet)
		}
		for i := 0; i < 40; i++ {
			e.End()
		}
		e.End()
	})
	tests := []struct {
		name    string
		body    []byte
		kind    BodyErrorKind
		off     int
		element string
	}{
		{name: "empty body", body: nil, kind: BodyEmpty},
		{name: "wrong root (Ping)", body: bodyFile(t, "vector_f_ping_request.wbxml"), kind: BodyWrongRoot, off: 6, element: "Ping:Ping"},
		{name: "wrong root (Provision 14.1 with DeviceInformation)", body: bodyFile(t, "vector_c_provision_141_initial.wbxml"),
			kind: BodyWrongRoot, off: 6, element: "Provision:Provision"},
		{name: "data after the root", body: append(append([]byte(nil), valid...), 0x01), kind: BodySyntax, off: len(valid)},
		{name: "second root", body: append(append([]byte(nil), valid...), valid[4:]...), kind: BodySyntax, off: len(valid)},
		{name: "data after an empty root", body: bodyHex(t, "03 01 6A 00 00 12 05 09"), kind: BodySyntax, off: 7},
		{name: "root never closed", body: valid[:len(valid)-1], kind: BodySyntax, off: len(valid) - 1},
		{name: "cut inside the password", body: valid[:pwAt+6], kind: BodySyntax},
		{name: "bad header", body: bodyHex(t, "07 01 6A 00 00 12 45 01"), kind: BodySyntax},
		{name: "unknown code page", body: bodyHex(t, "03 01 6A 00 00 12 45 00 1E 49 01 01"), kind: BodySyntax},
		{name: "nested deeper than the limit", body: deep, kind: BodySyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := SettingsInfo{NumProperties: 1, present: 1 << SettingsOof}
			err := ReadSettings(tc.body, &info)
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("err = %v, want *BodyError", err)
			}
			if be.Kind != tc.kind || be.Command != "Settings" || !strings.HasPrefix(err.Error(), "eas: Settings body: ") {
				t.Fatalf("err = %v (kind %v), want kind %v", err, be.Kind, tc.kind)
			}
			if tc.off != 0 && be.Offset != tc.off {
				t.Fatalf("offset %d, want %d (%v)", be.Offset, tc.off, err)
			}
			if be.Element != tc.element {
				t.Fatalf("element %q, want %q", be.Element, tc.element)
			}
			if tc.kind == BodySyntax {
				var se *wbxml.SyntaxError
				if !errors.As(err, &se) && !errors.Is(err, io.EOF) {
					t.Fatalf("BodySyntax wraps neither a *wbxml.SyntaxError nor io.EOF: %#v", be.Err)
				}
			}
			if strings.Contains(err.Error(), "secret") || (be.Err != nil && strings.Contains(be.Err.Error(), "secret")) {
				t.Fatalf("error shows a body value: %v", err)
			}
			settingsCheck(t, tc.body, &info, err)
		})
	}
}

// TestReadSettingsTruncated: every proper prefix of every Settings body
// fails with a *BodyError (the reader checks the whole document), and the
// full body succeeds.
func TestReadSettingsTruncated(t *testing.T) {
	for name, body := range settingsBodies(t) {
		var info SettingsInfo
		for n := 0; n < len(body); n++ {
			err := ReadSettings(body[:n], &info)
			if err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes accepted", name, n, len(body))
			}
			settingsCheck(t, body[:n], &info, err)
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("%s: error shows a body value: %v", name, err)
			}
		}
		err := ReadSettings(body, &info)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		settingsCheck(t, body, &info, err)
	}
}

func TestSettingsProperty(t *testing.T) {
	for _, tc := range []struct {
		p    SettingsProperty
		tag  wbxml.Tag
		name string
	}{
		{SettingsOof, wbxml.SettingsOof, "Oof"},
		{SettingsDevicePassword, wbxml.SettingsDevicePassword, "DevicePassword"},
		{SettingsDeviceInformation, wbxml.SettingsDeviceInformation, "DeviceInformation"},
		{SettingsUserInformation, wbxml.SettingsUserInformation, "UserInformation"},
		{SettingsRightsManagementInformation, wbxml.SettingsRightsManagementInformation, "RightsManagementInformation"},
		{0, 0, "SettingsProperty(0)"},
		{6, 0, "SettingsProperty(6)"},
		{255, 0, "SettingsProperty(255)"},
	} {
		if tc.p.Tag() != tc.tag || tc.p.String() != tc.name {
			t.Errorf("%d: Tag %v String %q, want %v %q", tc.p, tc.p.Tag(), tc.p.String(), tc.tag, tc.name)
		}
		if tc.tag != 0 && settingsProperty(tc.tag) != tc.p {
			t.Errorf("settingsProperty(%v) = %v", tc.tag, settingsProperty(tc.tag))
		}
	}
	if settingsProperty(0) != 0 || settingsProperty(wbxml.SettingsSet) != 0 || settingsProperty(wbxml.AirSyncStatus) != 0 {
		t.Error("settingsProperty maps an element that is not a named property")
	}
}

// TestReadSettingsAllocs proves ReadSettings allocates nothing.
func TestReadSettingsAllocs(t *testing.T) {
	if bodyRace {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	for _, name := range []string{"outlook_get_161.xml", "ios_devinfo_140.xml", "ios_oof_set.xml"} {
		body := settingsXML(t, name)
		var info SettingsInfo
		n := testing.AllocsPerRun(200, func() {
			if err := ReadSettings(body, &info); err != nil || info.NumProperties == 0 {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}

func BenchmarkReadSettings(b *testing.B) {
	var info SettingsInfo
	benchBody(b, "settings_request_oof_devinfo.wbxml", func(body []byte) {
		if err := ReadSettings(body, &info); err != nil || info.NumProperties != 3 {
			b.Fatal(err)
		}
	})
}

func FuzzReadSettings(f *testing.F) {
	bodySeeds(f)
	for _, body := range settingsBodies(f) {
		f.Add(body)
	}
	f.Add([]byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x12, 0x45, 0x09, 0x14, 0x16, 0x1D, 0x2B, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		var info SettingsInfo
		err := ReadSettings(body, &info)
		settingsCheck(t, body, &info, err)
		if err == nil {
			// A second read into the used dst agrees.
			again := info
			if err := ReadSettings(body, &again); err != nil || again != info {
				t.Fatalf("re-read differs: %v %+v %+v", err, again, info)
			}
		}
	})
}

// A quarantine gateway lets a Settings request through unless it would
// change the mailbox (an Oof or DevicePassword), and answers each listed
// property in request order.
func ExampleReadSettings() {
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.SettingsSettings)
	e.Start(wbxml.SettingsOof)
	e.Start(wbxml.SettingsGet)
	e.Element(wbxml.SettingsBodyType, "HTML")
	e.End()
	e.End()
	e.Start(wbxml.SettingsUserInformation)
	e.Empty(wbxml.SettingsGet)
	e.End()
	e.End()

	var info SettingsInfo
	if err := ReadSettings(e.Bytes(), &info); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(info.List(), "changes mailbox:", info.Has(SettingsOof) || info.Has(SettingsDevicePassword))
	fmt.Println("device information:", info.Has(SettingsDeviceInformation))

	// A body cut short is a *BodyError naming the command and offset.
	body := e.Bytes()
	fmt.Println(ReadSettings(body[:len(body)-1], &info))
	// Output:
	// [Oof UserInformation] changes mailbox: true
	// device information: false
	// eas: Settings body: malformed WBXML: input ended with elements open (offset 22)
}
