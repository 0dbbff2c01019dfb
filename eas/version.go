package eas

// Version is an EAS protocol version times ten: 25 is 2.5, 121 is 12.1,
// 161 is 16.1. It is the same number as the base64 query's version byte.
// Zero means "not stated".
type Version uint8

// Protocol versions easgate understands.
const (
	V25  Version = 25
	V120 Version = 120
	V121 Version = 121
	V140 Version = 140
	V141 Version = 141
	V160 Version = 160
	V161 Version = 161
)

// versionNames is indexed by Version: every request reads it (a map
// lookup cost more than the rest of ParseVersion).
var versionNames = [256]string{
	20: "2.0", 21: "2.1", V25: "2.5", V120: "12.0", V121: "12.1",
	V140: "14.0", V141: "14.1", V160: "16.0", V161: "16.1",
}

// String returns the version as sent in MS-ASProtocolVersion ("14.1"), or
// "" for zero and unknown values.
func (v Version) String() string { return versionNames[v] }

// Known reports whether v is one of the published protocol versions.
func (v Version) Known() bool { return versionNames[v] != "" }

// ParseVersion reads an MS-ASProtocolVersion value such as "14.1". It
// accepts exactly "major.minor" with one minor digit, and does not allocate.
func ParseVersion(b []byte) (Version, bool) {
	var major, minor int
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 2 {
		major = major*10 + int(b[i]-'0')
		i++
	}
	if i == 0 || i >= len(b) || b[i] != '.' || i+2 != len(b) {
		return 0, false
	}
	c := b[i+1]
	if c < '0' || c > '9' {
		return 0, false
	}
	minor = int(c - '0')
	v := major*10 + minor
	if v > 255 {
		return 0, false
	}
	if !Version(v).Known() {
		return 0, false
	}
	return Version(v), true
}
