package eas

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestIdentifyIOSLegacyBuilds(t *testing.T) {
	tests := []struct {
		code, build, version string
	}{
		{"1002.329", "10B329", "6.1.3"},
		{"1104.201", "11D201", "7.1.1"},
		{"1202.435", "12B435", "8.1.1"},
		{"801.293", "8A293", "4.0"},
		{"801.306", "8A306", "4.0.1"},
		{"803.14800001", "8C148a", "4.2.1"},
		{"805.600", "8E600", "4.2.10"},
		{"808.7", "8H7", "4.3.2"},
		{"901.334", "9A334", "5.0"},
		{"1001.523", "10A523", "6.0.1"},
		{"1001.8426", "10A8426", "6.0.1"},
		{"1002.146", "10B146", "6.1.2"},
		{"1101.47000001", "11A470a", "7.0.1"},
		{"1102.55400001", "11B554a", "7.0.4"},
		{"1102.651", "11B651", "7.0.6"},
		{"1104.167", "11D167", "7.1"},
		{"1104.257", "11D257", "7.1.2"},
		{"1206.69", "12F69", "8.3"},
		{"1208.143", "12H143", "8.4"},
		{"1301.452", "13A452", "9.0.2"},
		{"1307.36", "13G36", "9.3.5"},
		{"1407.61", "14G61", "10.3.4"},
		{"1507.77", "15G77", "11.4.1"},
		{"1608.62", "16H62", "12.5.5"},
		{"1708.35", "17H35", "13.7"},
		{"1808.107", "18H107", "14.8.1"},
		{"1908.12", "19H12", "15.7"},
		{"2006.75", "20F75", "16.5.1"},
		{"2101.329", "21A329", "17.0"},
		{"2201.3354", "22A3354", "18.0"},
		{"2301.341", "23A341", "26.0"},
		{"704.11", "7D11", "3.1.2"},
		// Not in the table: the major version follows from the train.
		{"705.99", "7E99", "3.x"},
		{"1009.999", "10I999", "6.x"},
		{"2209.1", "22I1", "18.x"},
		{"2301.1", "23A1", "26.x"},
		{"2401.437", "24A437", "27.x"},
		// Train below iPhone OS 3: no version at all.
		{"501.347", "5A347", ""},
	}
	for _, tt := range tests {
		for _, ua := range []string{"Apple-iPhone4C1/" + tt.code, "iOS/" + tt.code} {
			c := Identify([]byte(ua), []byte("iPhone"), nil)
			if c.Family != FamilyIOSMail || c.OS != OSiOS {
				t.Errorf("%s: family %v os %v, want iOS Mail on iOS", ua, c.Family, c.OS)
			}
			if got := c.BuildString(); got != tt.build {
				t.Errorf("%s: build %q, want %q", ua, got, tt.build)
			}
			if got := c.OSVersion.String(); got != tt.version {
				t.Errorf("%s: version %q, want %q", ua, got, tt.version)
			}
			if approx := strings.HasSuffix(tt.version, ".x"); c.OSVersion.Approx != approx {
				t.Errorf("%s: Approx = %v, want %v", ua, c.OSVersion.Approx, approx)
			}
		}
	}
}

func TestIdentifyIOSLegacyMalformed(t *testing.T) {
	for _, ua := range []string{
		"Apple-iPhone4C1/",
		"Apple-iPhone4C1/1000.329",      // letter index 0
		"Apple-iPhone4C1/1027.329",      // letter index 27
		"Apple-iPhone4C1/10.329",        // too short for train+letter
		"Apple-iPhone4C1/10002.329",     // five digits before the dot
		"Apple-iPhone4C1/1002.",         // no build number
		"Apple-iPhone4C1/1002.32900099", // suffix 99 is not a letter
		"Apple-iPhone4C1/1002.12345600001",
		"Apple-iPhone4C1/10x2.329",
		"Apple-iPhone4C1",
	} {
		c := Identify([]byte(ua), nil, nil)
		if c.Family != FamilyIOSMail || c.OS != OSiOS {
			t.Errorf("%q: family %v os %v", ua, c.Family, c.OS)
		}
		if c.OSVersion.Known || c.BuildLen != 0 {
			t.Errorf("%q: read version %v build %q from a malformed number", ua, c.OSVersion, c.BuildString())
		}
	}
}

// TestIOSBuildTableParses checks the embedded table: size, coverage of
// every major release from iOS 4 to iOS 26, round-trip of every build, and
// that each version matches its build train.
func TestIOSBuildTableParses(t *testing.T) {
	table, err := clientParseIOSBuilds(clientIOSBuildsData)
	if err != nil {
		t.Fatal(err)
	}
	if len(table) < 150 {
		t.Fatalf("table has %d builds, want at least 150", len(table))
	}
	majors := map[uint16]bool{}
	for i, e := range table {
		if i > 0 && table[i-1].key >= e.key {
			t.Fatalf("table not strictly sorted at %d", i)
		}
		text := clientFormatIOSBuildKey(e.key)
		key, ok := clientIOSBuildKey([]byte(text))
		if !ok || key != e.key {
			t.Errorf("build %q does not round-trip", text)
		}
		train := e.key >> 48
		want, _ := clientIOSMajorFromTrain(train)
		if e.major != want {
			t.Errorf("build %s maps to %d.%d.%d, but train %d is iOS %d", text, e.major, e.minor, e.patch, train, want)
		}
		majors[e.major] = true
	}
	for m := uint16(4); m <= 18; m++ {
		if !majors[m] {
			t.Errorf("no build for iOS %d", m)
		}
	}
	if !majors[26] {
		t.Error("no build for iOS 26")
	}
}

func TestIOSBuildTableErrors(t *testing.T) {
	for _, tt := range []struct{ data, want string }{
		{"10B329", "line 1: want \"BUILD VERSION\""},
		{"# c\n10b329 6.1.3", "line 2: malformed build"},
		{"10B329 6.1.x", "line 1: malformed version"},
		{"10B329 6.1.3\n10B329 6.1.3", "duplicate build 10B329"},
		{"B329 6.1", "malformed build"},
		{"10B123456 6.1", "malformed build"},
	} {
		_, err := clientParseIOSBuilds(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse %q: err %v, want %q", tt.data, err, tt.want)
		}
	}
	table, err := clientParseIOSBuilds("\r\n  # only comments\r\n11B554a 7.0.4 # trailing\r\n")
	if err != nil || len(table) != 1 {
		t.Fatalf("got %v, %v", table, err)
	}
}

func TestIdentifyDeviceInformation(t *testing.T) {
	tests := []struct {
		name      string
		ua, dt    string
		info      DeviceInfo
		wantOS    OSFamily
		wantVer   string
		wantBuild string
		wantModel string
	}{
		{"DeviceInformation OS wins over the UA version", "iOS/16.5.1 (20F75) dataaccessd/1.0", "iPhone",
			DeviceInfo{OS: "iOS 17.0 21A329"}, OSiOS, "17.0", "21A329", ""},
		{"DeviceInformation without build drops a UA build of another version", "iOS/16.5.1 (20F75) dataaccessd/1.0", "iPhone",
			DeviceInfo{OS: "iOS 16.6"}, OSiOS, "16.6", "", ""},
		{"DeviceInformation without version keeps the UA version", "iOS/16.5.1 (20F75) dataaccessd/1.0", "iPhone",
			DeviceInfo{OS: "iOS"}, OSiOS, "16.5.1", "20F75", ""},
		{"approximate UA version refined by DeviceInformation", "Apple-iPhone9C1/1407.999", "iPhone",
			DeviceInfo{OS: "iOS 10.3.3"}, OSiOS, "10.3.3", "14G999", "iPhone9C1"},
		{"iPadOS", "iOS/17.5 (21F79) dataaccessd/1.0", "iPad",
			DeviceInfo{OS: "iPadOS 17.5.1 (21F90)", Model: "iPad13C1"}, OSiOS, "17.5.1", "21F90", "iPad13C1"},
		{"a different OS family clears the UA OS data", "iOS/16.5.1 (20F75) dataaccessd/1.0", "iPhone",
			DeviceInfo{OS: "Android 13"}, OSAndroid, "13.0", "", ""},
		{"unknown OS name changes nothing", "Android/4.4.2-EAS-1.3", "Android",
			DeviceInfo{OS: "Tizen 3.0"}, OSAndroid, "4.4.2", "", ""},
		{"OS name must end at a word boundary", "", "",
			DeviceInfo{OS: "Androidish 5"}, OSUnknown, "", "", ""},
		{"Samsung version only from DeviceInformation", "SAMSUNG-SM-G991B/101.10000", "SAMSUNGSMG991B",
			DeviceInfo{OS: "Android 13", Model: "SM-G991B"}, OSAndroid, "13.0", "", "SM-G991B"},
		{"Windows Phone: no DeviceInformation rule reads its OS, the User-Agent's version stays",
			"MSFT-WP/8.10.14219 (gzip)", "WP", DeviceInfo{OS: "Windows Phone 8.10.15148"}, OSWindowsPhone, "8.10.14219", "", ""},
		{"Windows build", "MSFT-WIN-3/10.0.19045", "WindowsMail",
			DeviceInfo{OS: "Windows 10.0.22631"}, OSWindows, "10.0.22631", "", ""},
		{"TbSync on Linux", "Thunderbird ActiveSync", "TbSync",
			DeviceInfo{OS: "Linux"}, OSLinux, "", "", ""},
		{"TbSync on macOS", "Thunderbird ActiveSync", "TbSync",
			DeviceInfo{OS: "Darwin"}, OSmacOS, "", "", ""},
		{"non-iOS OS takes no build", "", "Android",
			DeviceInfo{OS: "Android 4.4.2 KOT49H"}, OSAndroid, "4.4.2", "", ""},
		{"padded fields", "  iOS/16.5.1 (20F75) dataaccessd/1.0 ", " iPhone ",
			DeviceInfo{OS: " iOS 16.5.1 20F75 ", Model: " iPhone15C2 "}, OSiOS, "16.5.1", "20F75", "iPhone15C2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := tt.info
			c := Identify([]byte(tt.ua), []byte(tt.dt), &info)
			if c.OS != tt.wantOS || c.OSVersion.String() != tt.wantVer || c.BuildString() != tt.wantBuild || string(c.Model) != tt.wantModel {
				t.Errorf("got os %v version %q build %q model %q; want %v %q %q %q",
					c.OS, c.OSVersion, c.BuildString(), c.Model, tt.wantOS, tt.wantVer, tt.wantBuild, tt.wantModel)
			}
		})
	}
}

func TestIdentifyFamilies(t *testing.T) {
	tests := []struct {
		ua, dt string
		family Family
		os     OSFamily
	}{
		{"Outlook/16.0 (16.0.4266.1001; MSI; x64)", "WindowsOutlook15", FamilyOutlookDesktop, OSWindows},
		{"Nine-x", "Android", FamilyNine, OSAndroid},
		{"Android-LG-H870/1.0", "LGH870", FamilyLGEmail, OSAndroid},
		{"Android-SAMSUNG-SM-G991B/101", "SAMSUNGSMG991B", FamilySamsungEmail, OSAndroid},
		{"BlackBerry10", "BlackBerry", FamilyBlackBerry, OSBlackBerry},
		{"", "BlackBerry", FamilyBlackBerry, OSBlackBerry},
		{"Evolution/3.44 activesyncd", "", FamilyEvolution, OSUnknown},
		{"", "WindowsMail", FamilyWindowsMail, OSWindows},
		{"", "WindowsOutlook", FamilyOutlookDesktop, OSWindows},
		{"", "Outlook", FamilyOutlookMobile, OSUnknown},
		{"", "SmartPhone", FamilyWindowsMobile, OSWindowsMobile},
		{"", "WP8", FamilyWindowsPhone, OSWindowsPhone},
		{"", "SAMSUNGSMN900V", FamilySamsungEmail, OSAndroid},
		{"", "iPad", FamilyUnknown, OSiOS},
		{"SomeApp/1.0", "iPhone", FamilyUnknown, OSiOS},
		{"", "", FamilyUnknown, OSUnknown},
		{"outlook-ios-android/1.0", "outlook", FamilyOutlookMobile, OSUnknown},
	}
	for _, tt := range tests {
		c := Identify([]byte(tt.ua), []byte(tt.dt), nil)
		if c.Family != tt.family || c.OS != tt.os {
			t.Errorf("Identify(%q, %q): %v on %v, want %v on %v", tt.ua, tt.dt, c.Family, c.OS, tt.family, tt.os)
		}
		if c.OSVersion.Known {
			t.Errorf("Identify(%q, %q): version %v from a string that states none", tt.ua, tt.dt, c.OSVersion)
		}
	}
}

func TestIdentifyUsesDeviceInformationUserAgent(t *testing.T) {
	info := &DeviceInfo{UserAgent: "iOS/7.0.2 (11A501) dataaccessd/1.0"}
	c := Identify(nil, []byte("iPad"), info)
	if c.Family != FamilyIOSMail || c.OSVersion.String() != "7.0.2" || c.BuildString() != "11A501" {
		t.Errorf("got %v %v %q", c.Family, c.OSVersion, c.BuildString())
	}
	// The HTTP User-Agent, when present, is the one used.
	c = Identify([]byte("Outlook-iOS-Android/1.0"), nil, info)
	if c.Family != FamilyOutlookMobile {
		t.Errorf("got %v, want Outlook mobile", c.Family)
	}
}

func TestWindowsRelease(t *testing.T) {
	for _, tt := range []struct {
		ua   string
		want int
	}{
		{"MSFT-WIN-3/10.0.22621", 11},
		{"MSFT-WIN-3/10.0.22000", 11},
		{"MSFT-WIN-3/10.0.21999", 10},
		{"MSFT-WIN-3/10.0.17134", 10},
		{"MSFT-WIN-3/10.0", 0},
		{"MSFT-WIN-3/6.3.9600", 0},
		{"MSFT-WIN-3/", 0},
		{"MSFT-WP/10.0.22621", 0},
	} {
		if got := Identify([]byte(tt.ua), nil, nil).WindowsRelease(); got != tt.want {
			t.Errorf("%s: WindowsRelease() = %d, want %d", tt.ua, got, tt.want)
		}
	}
}

func TestFamilyNames(t *testing.T) {
	seen := map[string]bool{}
	for f := FamilyUnknown; f < clientFamilyCount; f++ {
		if f.String() == "" || f.Slug() == "" || seen[f.Slug()] {
			t.Errorf("family %d: name %q slug %q", f, f.String(), f.Slug())
		}
		seen[f.Slug()] = true
		got, ok := ParseFamily(f.Slug())
		if !ok || got != f {
			t.Errorf("ParseFamily(%q) = %v, %v", f.Slug(), got, ok)
		}
		got, ok = ParseFamily(strings.ToUpper(f.Slug()))
		if !ok || got != f {
			t.Errorf("ParseFamily(%q) = %v, %v", strings.ToUpper(f.Slug()), got, ok)
		}
	}
	for _, tt := range []struct {
		f          Family
		name, slug string
	}{
		{FamilyIOSMail, "iOS Mail", "ios-mail"},
		{FamilyOutlookMobile, "Outlook mobile", "outlook-mobile"},
		{FamilyGmail, "Gmail", "gmail"},
		{FamilySamsungEmail, "Samsung Email", "samsung-email"},
		{FamilyAndroidEmail, "Android Email", "android-email"},
		{FamilyWindowsMail, "Windows Mail", "windows-mail"},
		{FamilyTbSync, "TbSync", "tbsync"},
		{FamilyUnknown, "Unknown", "unknown"},
		{Family(200), "Unknown", "unknown"},
	} {
		if tt.f.String() != tt.name || tt.f.Slug() != tt.slug {
			t.Errorf("%d: %q %q, want %q %q", tt.f, tt.f.String(), tt.f.Slug(), tt.name, tt.slug)
		}
	}
	for _, bad := range []string{"", "ios mail", "iOS Mail", "outlook", "gmail "} {
		if f, ok := ParseFamily(bad); ok {
			t.Errorf("ParseFamily(%q) = %v, want failure", bad, f)
		}
	}
}

func TestParseOSFamily(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want OSFamily
		ok   bool
	}{
		{"iOS", OSiOS, true},
		{"ios", OSiOS, true},
		{"iPadOS", OSiOS, true},
		{"Android", OSAndroid, true},
		{"ANDROID", OSAndroid, true},
		{"Windows", OSWindows, true},
		{"Windows Phone", OSWindowsPhone, true},
		{"windows-phone", OSWindowsPhone, true},
		{"windows_mobile", OSWindowsMobile, true},
		{"BlackBerry", OSBlackBerry, true},
		{"linux", OSLinux, true},
		{"macOS", OSmacOS, true},
		{"unknown", OSUnknown, true},
		{"", OSUnknown, false},
		{"Win", OSUnknown, false},
		{"Windows Phones", OSUnknown, false},
		{"a very long operating system name indeed", OSUnknown, false},
	} {
		got, ok := ParseOSFamily(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseOSFamily(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	for o := OSUnknown; o < clientOSCount; o++ {
		if got, ok := ParseOSFamily(o.String()); !ok || got != o {
			t.Errorf("ParseOSFamily(%q) = %v, %v", o.String(), got, ok)
		}
	}
	if OSFamily(99).String() != "Unknown" {
		t.Error("out-of-range OSFamily should print Unknown")
	}
}

func TestParseOSVersion(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want OSVersion
		ok   bool
		str  string
	}{
		{"16", OSVersion{Major: 16, Known: true}, true, "16.0"},
		{"16.0", OSVersion{Major: 16, Known: true}, true, "16.0"},
		{" 6.1.3 ", OSVersion{Major: 6, Minor: 1, Patch: 3, Known: true}, true, "6.1.3"},
		{"10.0.22621", OSVersion{Major: 10, Patch: 22621, Known: true}, true, "10.0.22621"},
		{"7.x", OSVersion{Major: 7, Known: true, Approx: true}, true, "7.x"},
		{"7.X", OSVersion{Major: 7, Known: true, Approx: true}, true, "7.x"},
		{"65535.65535.65535", OSVersion{Major: 65535, Minor: 65535, Patch: 65535, Known: true}, true, "65535.65535.65535"},
		{"", OSVersion{}, false, ""},
		{"x", OSVersion{}, false, ""},
		{".x", OSVersion{}, false, ""},
		{"7.1.x", OSVersion{}, false, ""},
		{"16.", OSVersion{}, false, ""},
		{"16.0.1.2", OSVersion{}, false, ""},
		{"v16", OSVersion{}, false, ""},
		{"65536", OSVersion{}, false, ""},
		{"1.2a", OSVersion{}, false, ""},
	} {
		got, ok := ParseOSVersion(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseOSVersion(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if got.String() != tt.str {
			t.Errorf("ParseOSVersion(%q).String() = %q, want %q", tt.in, got.String(), tt.str)
		}
	}
}

func TestOSVersionLess(t *testing.T) {
	v := func(s string) OSVersion {
		x, ok := ParseOSVersion(s)
		if !ok {
			t.Fatalf("bad version %q", s)
		}
		return x
	}
	for _, tt := range []struct {
		a, b OSVersion
		want bool
	}{
		{v("15.8"), v("16.0"), true},
		{v("16.0"), v("16.0"), false},
		{v("16.0"), v("16"), false},
		{v("6.1.3"), v("6.1.4"), true},
		{v("6.1.4"), v("6.1.3"), false},
		{v("6.2"), v("6.10"), true},
		{v("10.0.17134"), v("10.0.22000"), true},
		{v("15.x"), v("16.0"), true},
		{v("16.x"), v("16.0"), false},
		{OSVersion{}, v("16.0"), false},
		{v("16.0"), OSVersion{}, false},
	} {
		if got := tt.a.Less(tt.b); got != tt.want {
			t.Errorf("%v.Less(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestClientMarshalJSON(t *testing.T) {
	info := &DeviceInfo{Model: "Bob's \"phone\"\n\x01\xff\u00e9", OS: "Android 14"}
	c := Identify([]byte("Android-Mail/2024.01.01"), []byte("Android"), info)
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"family": "Gmail", "os": "Android", "os_version": "14.0", "model": "Bob's \"phone\"\n\x01\ufffd\u00e9", "app_version": "2024.01.01"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Client is usable through encoding/json as a value and a field.
	out, err := json.Marshal(struct{ C Client }{Identify([]byte("MSFT-WIN-3/10.0.22621"), nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"C":{"family":"Windows Mail","os":"Windows","os_version":"10.0.22621","os_release":"Windows 11"}}` {
		t.Errorf("got %s", out)
	}
	if b, _ := (Client{}).MarshalJSON(); string(b) != `{"family":"Unknown"}` {
		t.Errorf("zero client: %s", b)
	}
}

// TestIdentifyAllocs proves the hot path allocates nothing.
func TestIdentifyAllocs(t *testing.T) {
	for _, tt := range clientBenchCases() {
		t.Run(tt.name, func(t *testing.T) {
			var sink Client
			n := testing.AllocsPerRun(200, func() {
				sink = Identify(tt.ua, tt.deviceType, tt.info)
			})
			if n != 0 {
				t.Errorf("Identify allocates %v times per call, want 0", n)
			}
			if sink.Family == FamilyUnknown {
				t.Errorf("case did not identify: %+v", sink)
			}
		})
	}
}

// ExampleIdentify shows the classification of a legacy iOS Mail User-Agent,
// as `easgate classify` prints it.
func ExampleIdentify() {
	c := Identify([]byte("Apple-iPhone4C1/1002.329"), []byte("iPhone"), nil)
	out, _ := json.Marshal(c)
	fmt.Println(string(out))
	fmt.Println(c.Family.Slug(), c.OS, c.OSVersion.Less(OSVersion{Major: 16, Known: true}))
	// Output:
	// {"family":"iOS Mail","os":"iOS","os_version":"6.1.3","model":"iPhone4C1","build":"10B329"}
	// ios-mail iOS true
}

func TestIdentifyIOSNewMalformed(t *testing.T) {
	for _, tt := range []struct{ ua, version, build string }{
		{"iOS/1099.999", "", ""},
		{"iOS/100.1 (20F75)", "16.5.1", "20F75"},            // no OS version above 99: the build tells
		{"iOS/ (20F75) dataaccessd/1.0", "16.5.1", "20F75"}, // version from the build table
		{"iOS/ (20Z75) dataaccessd/1.0", "16.x", "20Z75"},   // not in the table: major from the train
		{"iOS/16.5.1 (not-a-build) dataaccessd/1.0", "16.5.1", ""},
		{"iOS/16.5.1 (20F75", "16.5.1", ""},
		{"iOS/16.5.1 (12345678901234567A1)", "16.5.1", ""},
	} {
		c := Identify([]byte(tt.ua), nil, nil)
		if c.OSVersion.String() != tt.version || c.BuildString() != tt.build {
			t.Errorf("%q: version %q build %q, want %q %q", tt.ua, c.OSVersion, c.BuildString(), tt.version, tt.build)
		}
	}
}
