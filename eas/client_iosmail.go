package eas

import (
	_ "embed"
	"fmt"
	"strconv"
)

// iOS Mail has sent two User-Agent forms (PROTOCOL.md §5):
//
//   - legacy, up to about iOS 8: "Apple-<HW>/<TTLL>.<NNN>", e.g.
//     "Apple-iPhone4C1/1002.329". TT is the build train, LL the build letter
//     index (01 = A, 02 = B, …) and NNN the build number, so 1002.329 is build
//     10B329. A build suffix letter is encoded as five extra digits:
//     "1102.55400001" is 11B554a (00001 = a).
//   - current: "iOS/<version> (<build>) dataaccessd/1.0", e.g.
//     "iOS/16.5.1 (20F75) dataaccessd/1.0". Some servers have also seen the
//     legacy number after "iOS/" ("iOS/1002.329", horde DeviceTest.php).
//
// A legacy build is turned into a version with the table in iosbuilds.txt.
// When the build is not in the table, only the major version is derived from
// the train — train − 4 for trains 7 to 22 (iPhone OS 3 to iOS 18), train + 3
// from train 23 (iOS 26, when Apple renumbered) — and the version is marked
// Approx; trains below 7 (iPhone OS 1 and 2) give no version at all.

//go:embed iosbuilds.txt
var clientIOSBuildsData string

// clientIOSBuild is one row of the build table: a packed build key and its
// version.
type clientIOSBuild struct {
	key                 uint64
	major, minor, patch uint16
}

// clientIOSBuilds is the build table sorted by key, parsed once at start-up.
var clientIOSBuilds = clientMustParseIOSBuilds(clientIOSBuildsData)

func clientMustParseIOSBuilds(data string) []clientIOSBuild {
	t, err := clientParseIOSBuilds(data)
	if err != nil {
		// The table is embedded at compile time; TestIOSBuildTableParses
		// keeps it valid.
		panic("eas: iosbuilds.txt: " + err.Error())
	}
	return t
}

// clientParseIOSBuilds parses "BUILD VERSION" lines ('#' comments, blank
// lines ignored) into a table sorted by key. Malformed lines and duplicate
// builds are errors naming the line.
func clientParseIOSBuilds(data string) ([]clientIOSBuild, error) {
	var out []clientIOSBuild
	line := 0
	for len(data) > 0 {
		line++
		var l string
		if i := clientIndexByte(clientStrBytes(data), '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, ""
		}
		if i := clientIndexByte(clientStrBytes(l), '#'); i >= 0 {
			l = l[:i]
		}
		b := clientTrimSpace(clientStrBytes(l))
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = clientTrimSpace(b[:len(b)-1])
		}
		if len(b) == 0 {
			continue
		}
		sp := clientIndexByte(b, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("line %d: want \"BUILD VERSION\", got %q", line, b)
		}
		build, ver := b[:sp], clientTrimSpace(b[sp+1:])
		key, ok := clientIOSBuildKey(build)
		if !ok {
			return nil, fmt.Errorf("line %d: malformed build %q", line, build)
		}
		v, n, ok := clientParseVersion(ver)
		if !ok || n != len(ver) {
			return nil, fmt.Errorf("line %d: malformed version %q", line, ver)
		}
		out = append(out, clientIOSBuild{key: key, major: v.Major, minor: v.Minor, patch: v.Patch})
	}
	// Insertion sort: the file is nearly sorted and read once.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].key < out[j-1].key; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	for i := 1; i < len(out); i++ {
		if out[i].key == out[i-1].key {
			return nil, fmt.Errorf("duplicate build %s", clientFormatIOSBuildKey(out[i].key))
		}
	}
	return out, nil
}

// clientIOSBuildKey packs an iOS build ("10B329", "11B554a", "22A3354")
// into train<<48 | letter<<40 | number<<8 | suffix. It accepts a 1-2 digit
// train, one upper-case letter, a 1-5 digit number and an optional
// lower-case suffix letter.
func clientIOSBuildKey(b []byte) (uint64, bool) {
	i := 0
	var train uint64
	for i < len(b) && i < 2 && clientIsDigit(b[i]) {
		train = train*10 + uint64(b[i]-'0')
		i++
	}
	if i == 0 || train == 0 || i >= len(b) || b[i] < 'A' || b[i] > 'Z' {
		return 0, false
	}
	letter := uint64(b[i]-'A') + 1
	i++
	start := i
	var num uint64
	for i < len(b) && clientIsDigit(b[i]) {
		if i-start == 5 {
			return 0, false
		}
		num = num*10 + uint64(b[i]-'0')
		i++
	}
	if i == start {
		return 0, false
	}
	var suffix uint64
	if i < len(b) && b[i] >= 'a' && b[i] <= 'z' {
		suffix = uint64(b[i]-'a') + 1
		i++
	}
	if i != len(b) {
		return 0, false
	}
	return train<<48 | letter<<40 | num<<8 | suffix, true
}

// clientIsIOSBuild reports whether b has the form of an iOS build.
func clientIsIOSBuild(b []byte) bool {
	if len(b) > 16 {
		return false
	}
	_, ok := clientIOSBuildKey(b)
	return ok
}

// clientAppendIOSBuild appends the text form of a packed key.
func clientAppendIOSBuild(dst []byte, key uint64) []byte {
	dst = strconv.AppendUint(dst, key>>48, 10)
	dst = append(dst, byte('A'+(key>>40&0xFF)-1))
	dst = strconv.AppendUint(dst, key>>8&0xFFFFFFFF, 10)
	if s := key & 0xFF; s != 0 {
		dst = append(dst, byte('a'+s-1))
	}
	return dst
}

func clientFormatIOSBuildKey(key uint64) string {
	return string(clientAppendIOSBuild(nil, key))
}

// clientLookupIOSBuild finds a packed build in the embedded table.
func clientLookupIOSBuild(key uint64) (OSVersion, bool) { return lookupIOSBuild(clientIOSBuilds, key) }

// lookupIOSBuild finds a packed build in t, a table sorted by key (binary
// search, no allocation).
func lookupIOSBuild(t []clientIOSBuild, key uint64) (OSVersion, bool) {
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t[m].key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(t) && t[lo].key == key {
		e := t[lo]
		return OSVersion{Major: e.major, Minor: e.minor, Patch: e.patch, Known: true}, true
	}
	return OSVersion{}, false
}

// clientIOSMajorFromTrain derives the iOS major version from a build train
// when the exact build is unknown.
func clientIOSMajorFromTrain(train uint64) (uint16, bool) {
	switch {
	case train >= 7 && train <= 22:
		return uint16(train - 4), true
	case train >= 23 && train <= 99:
		return uint16(train + 3), true
	}
	return 0, false
}
