package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// pattern matches one string characteristic of a device (DeviceType, model,
// OS, User-Agent). Without regex, a pattern is an exact match, or a glob
// where '*' matches any run of bytes ("Thunderbird ActiveSync*", "*Android*").
// Matching ignores ASCII case: Exchange stores these values as the device
// reported them, and administrators type them by hand.
type pattern struct {
	src string
	re  *regexp.Regexp // when the rule says regex: true
	lit string         // lower-cased glob or literal
}

func compilePattern(s string, regex bool) (pattern, error) {
	if regex {
		re, err := regexp.Compile(s)
		if err != nil {
			return pattern{}, fmt.Errorf("invalid regular expression %q: %v", s, err)
		}
		return pattern{src: s, re: re}, nil
	}
	return pattern{src: s, lit: strings.ToLower(s)}, nil
}

func (p *pattern) match(b []byte) bool {
	if p.re != nil {
		return p.re.Match(b)
	}
	return globFold(p.lit, b)
}

// globFold reports whether b matches the lower-case glob g, where '*' matches
// any run of bytes, ignoring ASCII case in b. It does not allocate and runs in
// O(len(g)*len(b)) at worst.
func globFold[T string | []byte](g string, b T) bool {
	gi, bi := 0, 0
	star, mark := -1, 0
	for bi < len(b) {
		if gi < len(g) && g[gi] == '*' {
			star, mark = gi, bi
			gi++
			continue
		}
		if gi < len(g) && g[gi] == lowerASCII(b[bi]) {
			gi++
			bi++
			continue
		}
		if star >= 0 {
			gi = star + 1
			mark++
			bi = mark
			continue
		}
		return false
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// patterns is a list of alternatives: any match counts.
type patterns []pattern

func compilePatterns(list []string, regex bool) (patterns, error) {
	out := make(patterns, 0, len(list))
	for _, s := range list {
		p, err := compilePattern(s, regex)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (ps patterns) match(b []byte) bool {
	for i := range ps {
		if ps[i].match(b) {
			return true
		}
	}
	return false
}

// matchString is match for a string value, without converting it.
func (ps patterns) matchString(s string) bool {
	for i := range ps {
		p := &ps[i]
		if p.re != nil {
			if p.re.MatchString(s) {
				return true
			}
			continue
		}
		if globFold(p.lit, s) {
			return true
		}
	}
	return false
}
