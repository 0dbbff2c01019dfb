package eas

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Client identification: which mail client a device runs, on which operating
// system and OS version. The rules follow PROTOCOL.md §5:
//
//   - The HTTP User-Agent names the client family (and for some clients the
//     OS version: iOS Mail, AOSP Email, Windows Mail, Windows Phone, Windows
//     Mobile). Prefixes are checked in the OX USM order.
//   - DeviceInformation OS ("iOS 7.0.2 11A501", "Android 10",
//     "Windows 10.0.17134") wins over anything read from the User-Agent.
//   - Outlook mobile, Gmail and Samsung Email say nothing about the OS version
//     in their User-Agent; their version comes only from DeviceInformation.
//     In particular the number after the last '.' of a Samsung User-Agent
//     ("SAMSUNG-SM-N900V/101.403") is the mail app's build, not an OS version,
//     and is not reported as one.
//   - DeviceType fills in the family or OS only when the User-Agent gave none.
//
// Nothing is guessed: what could not be read stays unknown (FamilyUnknown,
// OSUnknown, OSVersion.Known == false). The one deliberate approximation is
// the legacy iOS User-Agent whose build is missing from the build table: its
// major version follows from the build train and is marked OSVersion.Approx.

// Family is a mail client family.
type Family uint8

// Client families. FamilyUnknown is the zero value.
const (
	FamilyUnknown        Family = iota
	FamilyIOSMail               // Apple Mail on iPhone/iPad/iPod (dataaccessd)
	FamilyOutlookMobile         // Outlook for iOS and Android ("Outlook-iOS-Android/1.0")
	FamilyOutlookDesktop        // Outlook 2013+ for Windows speaking EAS ("Outlook/16.0")
	FamilyGmail                 // Gmail app for Android ("Android-Mail/…")
	FamilySamsungEmail          // Samsung Email ("SAMSUNG-SM-N900V/101.403")
	FamilyAndroidEmail          // AOSP Email / Exchange service ("Android/4.4.2-EAS-1.3")
	FamilyLGEmail               // LG Email ("Android-LG-…")
	FamilyWindowsMail           // Windows 10/11 Mail and Calendar ("MSFT-WIN-3/10.0.x")
	FamilyWindowsPhone          // Windows Phone 8/8.1 ("MSFT-WP/8.10.14219")
	FamilyWindowsMobile         // Windows Mobile ≤ 6.5 ("MSFT-PPC/5.2.5082")
	FamilyBlackBerry            // BlackBerry 10 Hub
	FamilyTouchDown             // NitroDesk TouchDown ("TouchDown(MSRPC)/7.1.0005")
	FamilyNine                  // Nine ("Nine-…")
	FamilyTbSync                // Thunderbird EAS-4-TbSync ("Thunderbird ActiveSync")
	FamilyEvolution             // GNOME Evolution (activesyncd)
	FamilyTestTool              // Microsoft connectivity test tools

	clientFamilyCount
)

var clientFamilyNames = [clientFamilyCount]string{
	FamilyUnknown:        "Unknown",
	FamilyIOSMail:        "iOS Mail",
	FamilyOutlookMobile:  "Outlook mobile",
	FamilyOutlookDesktop: "Outlook desktop",
	FamilyGmail:          "Gmail",
	FamilySamsungEmail:   "Samsung Email",
	FamilyAndroidEmail:   "Android Email",
	FamilyLGEmail:        "LG Email",
	FamilyWindowsMail:    "Windows Mail",
	FamilyWindowsPhone:   "Windows Phone",
	FamilyWindowsMobile:  "Windows Mobile",
	FamilyBlackBerry:     "BlackBerry",
	FamilyTouchDown:      "TouchDown",
	FamilyNine:           "Nine",
	FamilyTbSync:         "TbSync",
	FamilyEvolution:      "Evolution",
	FamilyTestTool:       "Test tool",
}

var clientFamilySlugs = [clientFamilyCount]string{
	FamilyUnknown:        "unknown",
	FamilyIOSMail:        "ios-mail",
	FamilyOutlookMobile:  "outlook-mobile",
	FamilyOutlookDesktop: "outlook-desktop",
	FamilyGmail:          "gmail",
	FamilySamsungEmail:   "samsung-email",
	FamilyAndroidEmail:   "android-email",
	FamilyLGEmail:        "lg-email",
	FamilyWindowsMail:    "windows-mail",
	FamilyWindowsPhone:   "windows-phone",
	FamilyWindowsMobile:  "windows-mobile",
	FamilyBlackBerry:     "blackberry",
	FamilyTouchDown:      "touchdown",
	FamilyNine:           "nine",
	FamilyTbSync:         "tbsync",
	FamilyEvolution:      "evolution",
	FamilyTestTool:       "test-tool",
}

// String returns the display name ("iOS Mail", "Outlook mobile"); values out
// of range give "Unknown".
func (f Family) String() string {
	if f >= clientFamilyCount {
		return clientFamilyNames[FamilyUnknown]
	}
	return clientFamilyNames[f]
}

// Slug returns the configuration form ("ios-mail", "outlook-mobile").
func (f Family) Slug() string {
	if f >= clientFamilyCount {
		return clientFamilySlugs[FamilyUnknown]
	}
	return clientFamilySlugs[f]
}

// ParseFamily maps a configuration slug ("samsung-email"; ASCII case is
// ignored) to its Family. "unknown" is accepted and gives FamilyUnknown.
func ParseFamily(slug string) (Family, bool) {
	for i, s := range clientFamilySlugs {
		if clientEqualFold(clientStrBytes(slug), s) {
			return Family(i), true
		}
	}
	return FamilyUnknown, false
}

// OSFamily is an operating system family.
type OSFamily uint8

// Operating system families. OSUnknown is the zero value.
const (
	OSUnknown OSFamily = iota
	OSiOS              // iOS and iPadOS
	OSAndroid
	OSWindows
	OSWindowsPhone
	OSWindowsMobile
	OSBlackBerry
	OSLinux
	OSmacOS

	clientOSCount
)

var clientOSNames = [clientOSCount]string{
	OSUnknown:       "Unknown",
	OSiOS:           "iOS",
	OSAndroid:       "Android",
	OSWindows:       "Windows",
	OSWindowsPhone:  "Windows Phone",
	OSWindowsMobile: "Windows Mobile",
	OSBlackBerry:    "BlackBerry",
	OSLinux:         "Linux",
	OSmacOS:         "macOS",
}

// String returns the display name ("iOS", "Windows Phone").
func (o OSFamily) String() string {
	if o >= clientOSCount {
		return clientOSNames[OSUnknown]
	}
	return clientOSNames[o]
}

// ParseOSFamily maps a name to its OSFamily. ASCII case, spaces, '-' and '_'
// are ignored ("Windows Phone", "windows-phone" and "WINDOWSPHONE" are the
// same); "iPadOS" is accepted as OSiOS. "unknown" gives OSUnknown.
func ParseOSFamily(s string) (OSFamily, bool) {
	var buf [24]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '-' || c == '_' {
			continue
		}
		if n == len(buf) {
			return OSUnknown, false
		}
		buf[n] = clientLower(c)
		n++
	}
	key := buf[:n]
	for i, name := range clientOSNames {
		m := 0
		match := true
		for j := 0; j < len(name); j++ {
			c := name[j]
			if c == ' ' {
				continue
			}
			if m >= len(key) || key[m] != clientLower(c) {
				match = false
				break
			}
			m++
		}
		if match && m == len(key) {
			return OSFamily(i), true
		}
	}
	if clientEqualFold(key, "ipados") {
		return OSiOS, true
	}
	return OSUnknown, false
}

// OSVersion is an operating system version. Windows keeps its NT form:
// "10.0.22621" is Major 10, Minor 0, Patch 22621 (Patch is the build).
//
// Known is false when no version could be read; all other fields are then
// zero. Approx is true when only Major is known (Minor and Patch are zero and
// mean "unknown"): Identify sets it for a legacy iOS User-Agent whose build is
// not in the build table, deriving Major from the build train.
type OSVersion struct {
	Major, Minor, Patch uint16
	Known               bool
	Approx              bool
}

// String formats the version: "6.1.3", "16.0" (Minor is always shown, Patch
// only when non-zero), "7.x" for an approximate version, "" when unknown.
func (v OSVersion) String() string {
	var buf [24]byte
	return string(v.AppendTo(buf[:0]))
}

// AppendTo appends the String form to dst without allocating beyond dst.
func (v OSVersion) AppendTo(dst []byte) []byte {
	if !v.Known {
		return dst
	}
	dst = strconv.AppendUint(dst, uint64(v.Major), 10)
	if v.Approx {
		return append(dst, ".x"...)
	}
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, uint64(v.Minor), 10)
	if v.Patch != 0 {
		dst = append(dst, '.')
		dst = strconv.AppendUint(dst, uint64(v.Patch), 10)
	}
	return dst
}

// Less reports whether v is a lower version than o, comparing Major, Minor
// and Patch numerically (missing parts count as 0). It is false when either
// version is unknown: an unknown version is neither below nor above anything,
// and the caller decides what that means. For an approximate v only the Major
// comparison is certain; callers that care test v.Approx.
func (v OSVersion) Less(o OSVersion) bool {
	if !v.Known || !o.Known {
		return false
	}
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// ParseOSVersion reads a version as written in configuration: "16",
// "16.0", "6.1.3", "10.0.22621", or "7.x" (approximate, major only).
// Surrounding spaces are ignored; anything else, or a part above 65535,
// is rejected.
func ParseOSVersion(s string) (OSVersion, bool) {
	b := clientTrimSpace(clientStrBytes(s))
	if n := len(b); n >= 3 && b[n-2] == '.' && (b[n-1] == 'x' || b[n-1] == 'X') {
		v, used, ok := clientParseVersion(b[:n-2])
		if !ok || used != n-2 || v.Minor != 0 || v.Patch != 0 || clientIndexByte(b[:n-2], '.') >= 0 {
			return OSVersion{}, false
		}
		v.Approx = true
		return v, true
	}
	v, used, ok := clientParseVersion(b)
	if !ok || used != len(b) {
		return OSVersion{}, false
	}
	return v, true
}

// Client is what Identify learned about the mail client behind a request.
type Client struct {
	Family    Family
	OS        OSFamily
	OSVersion OSVersion
	// Build is the OS build when known (iOS "10B329"), Build[:BuildLen].
	// It is a fixed array so that Identify does not allocate.
	Build    [16]byte
	BuildLen uint8
	// Model is the hardware model: DeviceInformation Model when present,
	// else what the User-Agent names ("iPhone4C1", "SM-N900V"). It aliases
	// Identify's inputs, stays valid only as long as they do, and must not
	// be modified.
	Model []byte
}

// BuildString returns the OS build ("10B329"), or "".
func (c Client) BuildString() string { return string(c.Build[:c.BuildLen]) }

// WindowsRelease returns 11 or 10 for a Windows NT 10.0 version (build 22000
// and later is Windows 11), and 0 when the OS is not Windows or its build is
// not known.
func (c Client) WindowsRelease() int {
	v := c.OSVersion
	if c.OS != OSWindows || !v.Known || v.Approx || v.Major != 10 || v.Minor != 0 || v.Patch == 0 {
		return 0
	}
	if v.Patch >= 22000 {
		return 11
	}
	return 10
}

// MarshalJSON renders the client as `easgate classify` prints it:
// {"family":"iOS Mail","os":"iOS","os_version":"6.1.3","model":"iPhone4C1","build":"10B329"}.
// Unknown fields are omitted; "os_release" ("Windows 11") is added for
// Windows NT 10.0 versions.
func (c Client) MarshalJSON() ([]byte, error) {
	return c.AppendJSON(make([]byte, 0, 128)), nil
}

// AppendJSON appends the MarshalJSON form to dst.
func (c Client) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	first := true
	field := func(name string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
	}
	if c.Family != FamilyUnknown && c.Family < clientFamilyCount {
		field("family")
		dst = clientAppendJSONString(dst, clientStrBytes(c.Family.String()))
	}
	if c.OS != OSUnknown && c.OS < clientOSCount {
		field("os")
		dst = clientAppendJSONString(dst, clientStrBytes(c.OS.String()))
	}
	if c.OSVersion.Known {
		field("os_version")
		dst = append(dst, '"')
		dst = c.OSVersion.AppendTo(dst)
		dst = append(dst, '"')
	}
	if r := c.WindowsRelease(); r != 0 {
		field("os_release")
		dst = append(dst, `"Windows `...)
		dst = strconv.AppendInt(dst, int64(r), 10)
		dst = append(dst, '"')
	}
	if len(c.Model) > 0 {
		field("model")
		dst = clientAppendJSONString(dst, c.Model)
	}
	if n := int(c.BuildLen); n > 0 && n <= len(c.Build) {
		field("build")
		dst = clientAppendJSONString(dst, c.Build[:n])
	}
	return append(dst, '}')
}

// Identify classifies a client from the request's User-Agent header, its
// DeviceType and, when known, the DeviceInformation the device reported
// (info may be nil). When userAgent is empty, info.UserAgent is used. It
// does not allocate; Client.Model aliases userAgent or info.Model.
func Identify(userAgent, deviceType []byte, info *DeviceInfo) Client {
	var c Client
	ua := clientTrimSpace(userAgent)
	if len(ua) == 0 && info != nil {
		ua = clientTrimSpace(clientStrBytes(info.UserAgent))
	}
	dt := clientTrimSpace(deviceType)

	clientFromUserAgent(&c, ua)
	if info != nil {
		if m := clientTrimSpace(clientStrBytes(info.Model)); len(m) > 0 {
			c.Model = m
		}
		if osb := clientTrimSpace(clientStrBytes(info.OS)); len(osb) > 0 {
			clientApplyDeviceOS(&c, osb)
		}
	}
	clientFromDeviceType(&c, dt)
	return c
}

// clientFromUserAgent sets the family and whatever the User-Agent says about
// OS, version, build and model. Prefix order follows OX USM (PROTOCOL.md §5).
func clientFromUserAgent(c *Client, ua []byte) {
	switch {
	case len(ua) == 0:
		return
	case clientHasPrefixFold(ua, "MSFT-WIN-3/"):
		c.Family, c.OS = FamilyWindowsMail, OSWindows
		c.OSVersion, _, _ = clientParseVersion(ua[len("MSFT-WIN-3/"):])
	case clientHasPrefixFold(ua, "Outlook-iOS-Android"),
		clientHasPrefixFold(ua, "Outlook-Android/"),
		clientHasPrefixFold(ua, "Outlook-iOS/"):
		// Outlook mobile: the OS comes only from DeviceInformation.
		c.Family = FamilyOutlookMobile
	case clientHasPrefixFold(ua, "Outlook/"):
		// Outlook 2013+ speaks EAS only on Windows (DeviceType WindowsOutlook*).
		c.Family, c.OS = FamilyOutlookDesktop, OSWindows
	case clientHasPrefixFold(ua, "Apple-"):
		c.Family, c.OS = FamilyIOSMail, OSiOS
		clientIOSLegacyUA(c, ua[len("Apple-"):])
	case clientHasPrefixFold(ua, "iOS/"):
		c.Family, c.OS = FamilyIOSMail, OSiOS
		clientIOSNewUA(c, ua[len("iOS/"):])
	case clientHasPrefixFold(ua, "Nine-"):
		c.Family, c.OS = FamilyNine, OSAndroid
	case clientHasPrefixFold(ua, "Android-Mail/"):
		c.Family, c.OS = FamilyGmail, OSAndroid
	case clientHasPrefixFold(ua, "Android-SAMSUNG-"):
		c.Family, c.OS = FamilySamsungEmail, OSAndroid
		c.Model = clientUAModel(ua[len("Android-SAMSUNG-"):])
	case clientHasPrefixFold(ua, "SAMSUNG-"):
		c.Family, c.OS = FamilySamsungEmail, OSAndroid
		c.Model = clientUAModel(ua[len("SAMSUNG-"):])
	case clientHasPrefixFold(ua, "Android-LG-"):
		c.Family, c.OS = FamilyLGEmail, OSAndroid
		c.Model = clientUAModel(ua[len("Android-LG-"):])
	case clientHasPrefixFold(ua, "Android/"):
		c.Family, c.OS = FamilyAndroidEmail, OSAndroid
		// "Android/4.4.2-EAS-1.3": the release is an OS version only when the
		// "-EAS-" marker follows; the old "Android/0.3" is the Exchange
		// service's own version, not Android's.
		rest := ua[len("Android/"):]
		if v, n, ok := clientParseVersion(rest); ok && clientHasPrefixFold(rest[n:], "-EAS-") {
			c.OSVersion = v
		}
	case clientHasPrefixFold(ua, "TouchDown"):
		c.Family = FamilyTouchDown
	case clientHasPrefixFold(ua, "Thunderbird ActiveSync"):
		c.Family = FamilyTbSync
	case clientHasPrefixFold(ua, "MSFT-WP/"):
		c.Family, c.OS = FamilyWindowsPhone, OSWindowsPhone
		c.OSVersion, _, _ = clientParseVersion(ua[len("MSFT-WP/"):])
	case clientHasPrefixFold(ua, "MSFT-PPC/"):
		c.Family, c.OS = FamilyWindowsMobile, OSWindowsMobile
		c.OSVersion, _, _ = clientParseVersion(ua[len("MSFT-PPC/"):])
	case clientHasPrefixFold(ua, "BlackBerry"), clientHasPrefixFold(ua, "RIM-BlackBerry"):
		c.Family, c.OS = FamilyBlackBerry, OSBlackBerry
	case clientHasPrefixFold(ua, "TestActiveSyncConnectivity"):
		c.Family = FamilyTestTool
	case clientContainsFold(ua, "Evolution"):
		c.Family = FamilyEvolution
	}
}

// clientFromDeviceType fills the family and OS from the URI DeviceType when
// the User-Agent did not name them.
func clientFromDeviceType(c *Client, dt []byte) {
	if len(dt) == 0 {
		return
	}
	fam, osf := FamilyUnknown, OSUnknown
	switch {
	case clientEqualFold(dt, "iPhone"), clientEqualFold(dt, "iPad"), clientEqualFold(dt, "iPod"):
		osf = OSiOS
	case clientEqualFold(dt, "Android"):
		osf = OSAndroid
	case clientHasPrefixFold(dt, "SAMSUNG"):
		fam, osf = FamilySamsungEmail, OSAndroid
	case clientEqualFold(dt, "WindowsMail"):
		fam, osf = FamilyWindowsMail, OSWindows
	case clientHasPrefixFold(dt, "WindowsOutlook"):
		fam, osf = FamilyOutlookDesktop, OSWindows
	case clientEqualFold(dt, "Outlook"):
		fam = FamilyOutlookMobile
	case clientEqualFold(dt, "WP8"), clientEqualFold(dt, "WP"), clientEqualFold(dt, "WindowsPhone"):
		fam, osf = FamilyWindowsPhone, OSWindowsPhone
	case clientEqualFold(dt, "PocketPC"), clientEqualFold(dt, "SmartPhone"):
		fam, osf = FamilyWindowsMobile, OSWindowsMobile
	case clientEqualFold(dt, "BlackBerry"):
		fam, osf = FamilyBlackBerry, OSBlackBerry
	case clientEqualFold(dt, "TbSync"):
		fam = FamilyTbSync
	case clientEqualFold(dt, "TestActiveSyncConnectivity"):
		fam = FamilyTestTool
	}
	if c.Family == FamilyUnknown {
		c.Family = fam
	}
	if c.OS == OSUnknown {
		c.OS = osf
	}
}

// clientOSNamePrefixes maps the OS names seen in DeviceInformation OS to a
// family. Longer names come first so that "Windows Phone" wins over
// "Windows". "WINNT"/"Linux"/"Darwin" are what EAS-4-TbSync sends
// (Services.appinfo.OS); "PPC" is the MS-ASMS §4.4 example.
var clientOSNamePrefixes = [...]struct {
	name string
	os   OSFamily
}{
	{"Windows Phone", OSWindowsPhone},
	{"Windows Mobile", OSWindowsMobile},
	{"Windows CE", OSWindowsMobile},
	{"Windows", OSWindows},
	{"WINNT", OSWindows},
	{"iPhone OS", OSiOS},
	{"iPadOS", OSiOS},
	{"iOS", OSiOS},
	{"Android", OSAndroid},
	{"BlackBerry", OSBlackBerry},
	{"Mac OS X", OSmacOS},
	{"macOS", OSmacOS},
	{"Darwin", OSmacOS},
	{"Linux", OSLinux},
	{"PPC", OSWindowsMobile},
}

// clientApplyDeviceOS applies DeviceInformation OS, which wins over the
// User-Agent. An OS name that is not recognised changes nothing.
func clientApplyDeviceOS(c *Client, s []byte) {
	osf := OSUnknown
	var rest []byte
	for _, p := range clientOSNamePrefixes {
		if clientHasPrefixFold(s, p.name) && (len(s) == len(p.name) || !clientIsLetter(s[len(p.name)])) {
			osf, rest = p.os, s[len(p.name):]
			break
		}
	}
	if osf == OSUnknown {
		return
	}
	if osf != c.OS {
		// A different OS than the User-Agent implied: nothing read from the
		// User-Agent about the OS still holds.
		c.OS = osf
		c.OSVersion = OSVersion{}
		c.BuildLen = 0
	}
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '/' || rest[0] == '_') {
		rest = rest[1:]
	}
	v, n, ok := clientParseVersion(rest)
	if !ok {
		return
	}
	// The User-Agent's build stays only when it belongs to the same version
	// (an approximate User-Agent version: to the same major).
	prev := c.OSVersion
	if !prev.Known || prev.Major != v.Major || (!prev.Approx && (prev.Minor != v.Minor || prev.Patch != v.Patch)) {
		c.BuildLen = 0
	}
	c.OSVersion = v
	if osf == OSiOS {
		b := clientTrimSpace(rest[n:])
		if len(b) > 2 && b[0] == '(' && b[len(b)-1] == ')' {
			b = b[1 : len(b)-1]
		}
		if clientIsIOSBuild(b) {
			c.BuildLen = uint8(copy(c.Build[:], b))
		}
	}
}

// clientUAModel returns the model in "SM-N900V/101.403": everything before
// the first '/', ' ' or '(' (nil when empty).
func clientUAModel(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		if b[i] == '/' || b[i] == ' ' || b[i] == '(' {
			b = b[:i]
			break
		}
	}
	if len(b) == 0 {
		return nil
	}
	return b
}

// clientParseVersion reads up to three dot-separated decimal parts at the
// start of b ("4.4.2-EAS-1.3" gives 4.4.2; a fourth part is ignored). It
// stops before a dot that is not followed by a digit. A part above 65535
// makes the whole version unreadable. n is the number of bytes used.
func clientParseVersion(b []byte) (v OSVersion, n int, ok bool) {
	var parts [3]uint16
	count := 0
	i := 0
	for count < 3 {
		start := i
		var x uint32
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			x = x*10 + uint32(b[i]-'0')
			if x > 0xFFFF {
				return OSVersion{}, 0, false
			}
			i++
		}
		if i == start {
			// Only reachable for the first part: a later part is entered
			// only when a digit follows the dot.
			return OSVersion{}, 0, false
		}
		parts[count] = uint16(x)
		count++
		if count == 3 || i+1 >= len(b) || b[i] != '.' || b[i+1] < '0' || b[i+1] > '9' {
			break
		}
		i++
	}
	return OSVersion{Major: parts[0], Minor: parts[1], Patch: parts[2], Known: true}, i, true
}

// clientAppendJSONString appends s as a JSON string, escaping quotes,
// backslashes and control characters and replacing invalid UTF-8 with U+FFFD.
func clientAppendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// clientStrBytes views s as bytes without copying. The result must not be
// modified.
func clientStrBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func clientLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func clientIsLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

func clientIsDigit(c byte) bool { return '0' <= c && c <= '9' }

func clientEqualFold(b []byte, s string) bool {
	return len(b) == len(s) && clientHasPrefixFold(b, s)
}

func clientHasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if clientLower(b[i]) != clientLower(prefix[i]) {
			return false
		}
	}
	return true
}

func clientContainsFold(b []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if clientHasPrefixFold(b[i:], sub) {
			return true
		}
	}
	return false
}

func clientIndexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func clientTrimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
