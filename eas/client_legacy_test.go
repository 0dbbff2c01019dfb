package eas

// The classifier as it was before the rules file (issue 16): a switch on
// User-Agent prefixes and DeviceType. It is kept, in a test file only, as
// the baseline of BenchmarkIdentifyBeforeAfter.

func legacyIdentify(userAgent, deviceType []byte, info *DeviceInfo) Client {
	var c Client
	ua := clientTrimSpace(userAgent)
	if len(ua) == 0 && info != nil {
		ua = clientTrimSpace(clientStrBytes(info.UserAgent))
	}
	dt := clientTrimSpace(deviceType)

	legacyFromUserAgent(&c, ua)
	if info != nil {
		if m := clientTrimSpace(clientStrBytes(info.Model)); len(m) > 0 {
			c.Model = m
		}
		if osb := clientTrimSpace(clientStrBytes(info.OS)); len(osb) > 0 {
			legacyApplyDeviceOS(&c, osb)
		}
	}
	legacyFromDeviceType(&c, dt)
	return c
}

func legacyFromUserAgent(c *Client, ua []byte) {
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
		legacyIOSLegacyUA(c, ua[len("Apple-"):])
	case clientHasPrefixFold(ua, "iOS/"):
		c.Family, c.OS = FamilyIOSMail, OSiOS
		legacyIOSNewUA(c, ua[len("iOS/"):])
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

func legacyFromDeviceType(c *Client, dt []byte) {
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

var legacyOSNamePrefixes = [...]struct {
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

func legacyApplyDeviceOS(c *Client, s []byte) {
	osf := OSUnknown
	var rest []byte
	for _, p := range legacyOSNamePrefixes {
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

func legacyIOSLegacyUA(c *Client, b []byte) {
	slash := clientIndexByte(b, '/')
	if slash < 0 {
		return
	}
	hw := b[:slash]
	for _, ch := range hw {
		if clientIsDigit(ch) {
			c.Model = hw // "iPhone4C1"; a bare "iPhone" is no model
			break
		}
	}
	legacyIOSLegacyBuild(c, b[slash+1:])
}

func legacyIOSNewUA(c *Client, b []byte) {
	if legacyIOSLegacyBuild(c, b) {
		return
	}
	v, n, ok := clientParseVersion(b)
	if ok && v.Major > 99 {
		// Neither an iOS version nor a legacy build number ("1099.999").
		return
	}
	rest := b
	if ok {
		c.OSVersion = v
		rest = b[n:]
	}
	rest = clientTrimSpace(rest)
	if len(rest) > 0 && rest[0] == '(' {
		end := clientIndexByte(rest, ')')
		if end > 0 && clientIsIOSBuild(rest[1:end]) {
			c.BuildLen = uint8(copy(c.Build[:], rest[1:end]))
			if !ok {
				key, _ := clientIOSBuildKey(rest[1:end])
				c.OSVersion, _ = clientLookupIOSBuild(key)
			}
		}
	}
}

// legacyIOSLegacyBuild decodes "1002.329" / "1102.55400001" into Build and
// OSVersion. It reports whether the number had the legacy form.
func legacyIOSLegacyBuild(c *Client, b []byte) bool {
	dot := clientIndexByte(b, '.')
	if dot < 3 || dot > 4 {
		return false
	}
	var head uint64
	for _, ch := range b[:dot] {
		if !clientIsDigit(ch) {
			return false
		}
		head = head*10 + uint64(ch-'0')
	}
	digits := b[dot+1:]
	for i, ch := range digits {
		if !clientIsDigit(ch) {
			digits = digits[:i]
			break
		}
	}
	if len(digits) == 0 || len(digits) > 10 {
		return false
	}
	train, letter := head/100, head%100
	if train == 0 || letter < 1 || letter > 26 {
		return false
	}
	var num, suffix uint64
	numDigits := digits
	if len(digits) > 5 {
		numDigits = digits[:len(digits)-5]
		for _, ch := range digits[len(digits)-5:] {
			suffix = suffix*10 + uint64(ch-'0')
		}
		if suffix > 26 {
			return false
		}
	}
	if len(numDigits) > 5 {
		return false
	}
	for _, ch := range numDigits {
		num = num*10 + uint64(ch-'0')
	}
	key := train<<48 | letter<<40 | num<<8 | suffix
	var buf [24]byte
	build := clientAppendIOSBuild(buf[:0], key)
	c.BuildLen = uint8(copy(c.Build[:], build))
	if v, ok := clientLookupIOSBuild(key); ok {
		c.OSVersion = v
	} else if major, ok := clientIOSMajorFromTrain(train); ok {
		c.OSVersion = OSVersion{Major: major, Known: true, Approx: true}
	}
	return true
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
