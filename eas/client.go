package eas

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Client identification: which mail client a device runs, on which operating
// system and OS version. The knowledge is data, not code: the rules file
// clientrules.txt (embedded; see rules.go for its format) lists, in order,
// what each client's User-Agent, DeviceType and DeviceInformation look like
// and what they yield. Identify applies the embedded rules; a Rules value
// built by NewRules adds an administrator's rules to them.
//
// Nothing is guessed: what no rule yields stays unknown (FamilyUnknown,
// OSUnknown, OSVersion.Known == false). The one deliberate approximation is
// an iOS build missing from the build table (iosbuilds.txt): its major
// version follows from the build train and is marked OSVersion.Approx.

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
	FamilyAndroidEmail          // AOSP Email / Exchange service and OEM variants ("Android/4.4.2-EAS-1.3", "HTC-…", "Moto-…")
	FamilyLGEmail               // LG Email ("Android-LG-…")
	FamilyWindowsMail           // Windows 10/11 Mail and Calendar ("MSFT-WIN-3/10.0.x")
	FamilyWindowsPhone          // Windows Phone 8/8.1 ("MSFT-WP/8.10.14219")
	FamilyWindowsMobile         // Windows Mobile ≤ 6.5 ("MSFT-PPC/5.2.5082")
	FamilyBlackBerry            // BlackBerry 10 Hub, PlayBook, BlackBerry OS
	FamilyTouchDown             // NitroDesk TouchDown ("TouchDown(MSRPC)/7.1.0005")
	FamilyNine                  // Nine ("Nine-…")
	FamilyTbSync                // Thunderbird EAS-4-TbSync ("Thunderbird ActiveSync")
	FamilyEvolution             // GNOME Evolution (activesyncd)
	FamilyTestTool              // Microsoft connectivity test tools
	FamilyMacOSMail             // Apple Mail on macOS ("macOS/13.4 (22F66) dataaccessd/1.0")

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
	FamilyMacOSMail:      "macOS Mail",
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
	FamilyMacOSMail:      "macos-mail",
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
	// App is the mail app's own version when the User-Agent states it
	// ("2020.11.29.346182102.Release" for Gmail, "7.1.0005" for TouchDown),
	// App[:AppLen]; longer versions are cut to the array's size.
	App    [32]byte
	AppLen uint8
}

// AppVersion returns the mail app's version, or "".
func (c Client) AppVersion() string { return string(c.App[:c.AppLen]) }

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
// The family is always present ("Unknown" when no rule named it); other
// unknown fields are omitted; "os_release" ("Windows 11") is added for
// Windows NT 10.0 versions and "app_version" when the app stated it.
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
	field("family")
	dst = clientAppendJSONString(dst, clientStrBytes(c.Family.String()))
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
	if n := int(c.AppLen); n > 0 && n <= len(c.App) {
		field("app_version")
		dst = clientAppendJSONString(dst, c.App[:n])
	}
	return append(dst, '}')
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
