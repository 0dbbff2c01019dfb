package eas

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzIdentify feeds arbitrary User-Agent, DeviceType, DeviceInformation OS
// and Model strings to Identify. It must never panic, must report only sane
// versions, must alias (never invent) the model, and must produce valid JSON.
// Seeds are the real clients in testdata/clients/real.tsv.
func FuzzIdentify(f *testing.F) {
	for _, rc := range loadRealCases(f) {
		f.Add(rc.ua, rc.deviceType, rc.dOS, rc.dModel)
	}
	f.Add("Apple-iPhone4C1/1002.32900001", "iPhone", "iOS 99999.1", "")
	f.Add("iOS/ (20F75) dataaccessd/1.0", "iPhone", "", "")
	f.Add("MSFT-WIN-3/10.0.99999", "WindowsMail", "Windows 10.0.22621.1", "")
	f.Fuzz(func(t *testing.T, ua, deviceType, osName, model string) {
		info := &DeviceInfo{OS: osName, Model: model}
		c := Identify([]byte(ua), []byte(deviceType), info)
		c2 := Identify([]byte(ua), []byte(deviceType), nil)

		for _, x := range []Client{c, c2} {
			if x.Family >= clientFamilyCount || x.OS >= clientOSCount {
				t.Fatalf("family %d / os %d out of range", x.Family, x.OS)
			}
			v := x.OSVersion
			if !v.Known && v != (OSVersion{}) {
				t.Fatalf("unknown version with fields set: %+v", v)
			}
			if v.Approx && (v.Minor != 0 || v.Patch != 0) {
				t.Fatalf("approximate version with minor/patch: %+v", v)
			}
			if v.Known {
				if back, ok := ParseOSVersion(v.String()); !ok || back != v {
					t.Fatalf("version %+v does not round-trip through %q: %+v %v", v, v.String(), back, ok)
				}
			}
			if int(x.BuildLen) > len(x.Build) || int(x.AppLen) > len(x.App) {
				t.Fatalf("BuildLen %d", x.BuildLen)
			}
			if x.BuildLen > 0 && !clientIsIOSBuild(x.Build[:x.BuildLen]) {
				t.Fatalf("build %q is not an iOS build", x.BuildString())
			}
			if x.BuildLen > 0 && x.OS != OSiOS && x.OS != OSmacOS {
				t.Fatalf("build %q on %v", x.BuildString(), x.OS)
			}
			if len(x.Model) > 0 && !bytes.Contains([]byte(ua), x.Model) && !bytes.Contains([]byte(model), x.Model) {
				t.Fatalf("model %q is not taken from the inputs", x.Model)
			}
			out, err := x.MarshalJSON()
			if err != nil || !json.Valid(out) {
				t.Fatalf("MarshalJSON: %s, %v", out, err)
			}
			_ = x.Family.String() + x.Family.Slug() + x.OS.String()
			_ = x.WindowsRelease()
		}
		if _, ok := ParseOSFamily(osName); ok && osName == "" {
			t.Fatal("empty OS family parsed")
		}
		if v, ok := ParseOSVersion(osName); ok {
			if back, ok2 := ParseOSVersion(v.String()); !ok2 || back != v {
				t.Fatalf("ParseOSVersion(%q) = %+v does not round-trip", osName, v)
			}
		}
	})
}
