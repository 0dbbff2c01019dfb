package eas

// Patterns of the rules file. A pattern is matched against a whole field
// (anchored at both ends), ASCII case ignored:
//
//	literal text   matches itself ("Apple-", " dataaccessd/1.0")
//	*              any run of bytes, possibly empty (at most ruleMaxStars)
//	{version}      an OS version: digits with dots, "4.4.2", "10.0.17134"
//	{ioslegacy}    a legacy iOS build number, "1002.329", "1102.55400001"
//	{build}        an OS build: letters and digits, "20F75"
//	{model}        a token without ' ', '/', '(', ')', ';': "SM-N900V"; at the
//	               end of a pattern, the rest of the field, spaces included
//	{app}          the mail app's version, read like {model}
//	\* \{ \\       a literal '*', '{' or '\'
//
// Captures are greedy and never give back what they took, so a pattern is
// matched in one pass except at '*', which backtracks (to the last '*' only). A capture that reads
// nothing (or a version part above 65535, or a malformed legacy build) fails
// the match.

// Capture kinds.
const (
	capVersion uint8 = iota
	capIOSLegacy
	capBuild
	capModel
	capApp
	capCount
)

var capNames = [capCount]string{
	capVersion:   "version",
	capIOSLegacy: "ioslegacy",
	capBuild:     "build",
	capModel:     "model",
	capApp:       "app",
}

// Segment kinds.
const (
	segLit uint8 = iota
	segStar
	segCap
)

// ruleMaxStars bounds the stars of one pattern (matching is linear in the
// field's length whatever their number); ruleMaxInput is how much of a
// field the rules look at (a longer value is cut).
const (
	ruleMaxStars = 3
	ruleMaxInput = 512
)

type patSeg struct {
	kind uint8
	cap  uint8  // segCap: the capture kind
	lit  string // segLit: lower-cased literal
}

// pattern is one compiled pattern.
type pattern struct {
	src   string
	segs  []patSeg
	first int // lower-cased first byte a match must start with; -1 if any
	caps  uint8
}

// span is a captured range of the field [start, end).
type span struct{ start, end int32 }

// capSet holds one rule's captures; set says which are valid, from says in
// which field (evidence kind) each was taken.
type capSet struct {
	at   [capCount]span
	from [capCount]uint8
	set  uint8
	ver  OSVersion // the {version} capture, parsed while it was scanned
}

// compilePattern parses a pattern. col is the column of src in its line,
// for the error's position.
func compilePattern(src string) (pattern, int, string) {
	p := pattern{src: src, first: -1}
	var lit []byte
	stars := 0
	flush := func() {
		if len(lit) > 0 {
			p.segs = append(p.segs, patSeg{kind: segLit, lit: string(lit)})
			lit = nil
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '\\':
			if i+1 >= len(src) || (src[i+1] != '*' && src[i+1] != '{' && src[i+1] != '\\') {
				return p, i, `'\' must be followed by '*', '{' or '\'`
			}
			i++
			lit = append(lit, clientLower(src[i]))
		case '*':
			flush()
			if n := len(p.segs); n > 0 && p.segs[n-1].kind == segStar {
				continue // "**" is "*"
			}
			stars++
			if stars > ruleMaxStars {
				return p, i, "at most 3 '*' in a pattern"
			}
			p.segs = append(p.segs, patSeg{kind: segStar})
		case '{':
			end := -1
			for j := i + 1; j < len(src); j++ {
				if src[j] == '}' {
					end = j
					break
				}
			}
			if end < 0 {
				return p, i, "'{' without '}' (write \\{ for a literal brace)"
			}
			name := src[i+1 : end]
			k := capCount
			for ck, cn := range capNames {
				if cn == name {
					k = uint8(ck)
				}
			}
			if k == capCount {
				return p, i, "unknown capture {" + name + "}; want {version}, {ioslegacy}, {build}, {model} or {app}"
			}
			if p.caps&(1<<k) != 0 {
				return p, i, "capture {" + name + "} used twice in one pattern"
			}
			if n := len(p.segs); len(lit) == 0 && n > 0 && p.segs[n-1].kind == segCap {
				return p, i, "two captures in a row need a literal between them"
			}
			flush()
			p.caps |= 1 << k
			p.segs = append(p.segs, patSeg{kind: segCap, cap: k})
			i = end
		default:
			if c < 0x20 || c == 0x7f {
				return p, i, "control character in a pattern"
			}
			lit = append(lit, clientLower(c))
		}
	}
	flush()
	if len(p.segs) == 0 {
		return p, 0, "empty pattern"
	}
	if s := p.segs[0]; s.kind == segLit {
		p.first = int(s.lit[0])
	}
	return p, 0, ""
}

// match reports whether the whole of s matches p, recording captures into cs
// (tagged with the evidence kind from).
func (p *pattern) match(s []byte, cs *capSet, from uint8) bool {
	if p.first >= 0 && (len(s) == 0 || int(clientLower(s[0])) != p.first) {
		return false
	}
	saved := cs.set
	if !matchSegs(p.segs, s, cs) {
		// A capture kind is read from one field only, so nothing set before
		// this call is overwritten; forget what the failed attempt read.
		cs.set = saved
		return false
	}
	if p.caps != 0 {
		for k := uint8(0); k < capCount; k++ {
			if p.caps&(1<<k) != 0 {
				cs.from[k] = from
			}
		}
	}
	return true
}

// matchSegs matches segs against the whole of s. It backtracks only to
// the last '*' seen: the segments between two stars match deterministically
// (literals, and captures that take a maximal run), so placing each at the
// leftmost position that works never loses a match, and the cost stays
// O(len(s) × len(segs)) whatever the pattern.
func matchSegs(segs []patSeg, s []byte, cs *capSet) bool {
	pos, i := 0, 0
	star, starPos := -1, 0
	for {
		ok := true
		if i == len(segs) {
			if pos == len(s) {
				return true
			}
			ok = false
		} else {
			sg := &segs[i]
			switch sg.kind {
			case segStar:
				if i == len(segs)-1 {
					return true
				}
				star, starPos = i, pos
				i++
				continue
			case segLit:
				if len(s)-pos < len(sg.lit) {
					ok = false
					break
				}
				for j := 0; j < len(sg.lit); j++ {
					if clientLower(s[pos+j]) != sg.lit[j] {
						ok = false
						break
					}
				}
				if ok {
					pos += len(sg.lit)
				}
			case segCap:
				var n int
				if i == len(segs)-1 && (sg.cap == capModel || sg.cap == capApp) {
					n = scanRest(s[pos:]) // last in the pattern: the rest of the field
				} else if sg.cap == capVersion {
					n = scanVersion(s[pos:], &cs.ver)
				} else {
					n = scanCapture(sg.cap, s[pos:])
				}
				if n == 0 {
					ok = false
					break
				}
				cs.at[sg.cap] = span{int32(pos), int32(pos + n)}
				cs.set |= 1 << sg.cap
				pos += n
			}
			if ok {
				i++
				continue
			}
		}
		// Backtrack: let the last star take one more byte.
		if star < 0 || starPos >= len(s) {
			return false
		}
		starPos++
		pos, i = starPos, star+1
	}
}

// scanRest takes the rest of the field as it is (the field's value is
// the device's own text; printing escapes it).
func scanRest(b []byte) int { return len(b) }

// scanVersion reads a {version} capture into v and returns its length (0
// when there is none). Parts after the third ("10.0.22621.1") belong to the
// capture even though only three are kept.
func scanVersion(b []byte, v *OSVersion) int {
	var n int
	var ok bool
	*v, n, ok = clientParseVersion(b)
	if !ok {
		return 0
	}
	for n+1 < len(b) && b[n] == '.' && clientIsDigit(b[n+1]) {
		n++
		for n < len(b) && clientIsDigit(b[n]) {
			n++
		}
	}
	return n
}

// scanCapture returns how many bytes at the start of b a capture of kind k
// takes; 0 when it cannot match there.
func scanCapture(k uint8, b []byte) int {
	switch k {
	case capVersion:
		var v OSVersion
		return scanVersion(b, &v)
	case capIOSLegacy:
		_, n, ok := clientIOSLegacyKey(b)
		if !ok {
			return 0
		}
		return n
	case capBuild:
		n := 0
		for n < len(b) && n < 16 && (clientIsDigit(b[n]) || clientIsLetter(b[n])) {
			n++
		}
		if n < len(b) && (clientIsDigit(b[n]) || clientIsLetter(b[n])) {
			return 0 // longer than any build
		}
		return n
	case capModel, capApp:
		n := 0
		for n < len(b) {
			c := b[n]
			if c <= ' ' || c == '/' || c == '(' || c == ')' || c == ';' || c == 0x7f {
				break
			}
			n++
		}
		return n
	}
	return 0
}

// clientIOSLegacyKey decodes a legacy iOS build number at the start of b:
// "TTLL.NNN" with an optional five-digit suffix code ("1102.55400001" is
// 11B554a). It returns the packed build key and the bytes used.
func clientIOSLegacyKey(b []byte) (key uint64, n int, ok bool) {
	dot := clientIndexByte(b, '.')
	if dot < 3 || dot > 4 {
		return 0, 0, false
	}
	var head uint64
	for _, ch := range b[:dot] {
		if !clientIsDigit(ch) {
			return 0, 0, false
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
		return 0, 0, false
	}
	train, letter := head/100, head%100
	if train == 0 || letter < 1 || letter > 26 {
		return 0, 0, false
	}
	var num, suffix uint64
	numDigits := digits
	if len(digits) > 5 {
		numDigits = digits[:len(digits)-5]
		for _, ch := range digits[len(digits)-5:] {
			suffix = suffix*10 + uint64(ch-'0')
		}
		if suffix > 26 {
			return 0, 0, false
		}
	}
	if len(numDigits) > 5 {
		return 0, 0, false
	}
	for _, ch := range numDigits {
		num = num*10 + uint64(ch-'0')
	}
	return train<<48 | letter<<40 | num<<8 | suffix, dot + 1 + len(digits), true
}
