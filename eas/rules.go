package eas

import (
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The rules file (clientrules.txt, embedded; administrators add their own
// with identify.rules_file). It is a line format: '#' starts a comment line,
// blank lines are ignored, and every other line is "KEYWORD VALUE". A rule
// starts with "rule NAME" and owns the lines up to the next "rule",
// "ios-build" or "disable":
//
//	rule outlook-android
//	  source   Get-MobileDevice output in a public Exchange admin script
//	  ua       Outlook-Android/{app}
//	  family   outlook-mobile
//	  os-name  Android
//	  example  ua="Outlook-Android/2.0" type=Outlook => family=outlook-mobile os=Android
//
// Conditions (every condition given must hold; repeat a keyword to give
// alternatives, any of which may match): ua (the HTTP User-Agent, or the
// DeviceInformation UserAgent when the request has none), type (DeviceType),
// device-os, device-model and friendly-name (DeviceInformation OS, Model and
// FriendlyName). Each takes a pattern (rules_pattern.go) matched against the
// whole field; a condition never matches an empty field.
//
// Yields: family (a family slug, "unknown" to settle that the family is not
// known), os-name (an OS family name, "Android"), and whatever the captures
// of the conditions read: {version}, {ioslegacy} and {build} give the OS
// version and build (on the rule's os-name only), {model} the model, {app}
// the app's version. A rule must yield something, must say where its facts
// come from (source) and must have at least one example, which the tests
// (and, for an administrator's file, NewRules) check:
//
//	example ua="…" type="…" device-os="…" device-model="…" => family=SLUG os="NAME" version=V
//
// Values may be bare words or Go-quoted strings; os and version on the right
// are optional ("" for "unknown").
//
// Order of evidence: DeviceInformation first (Model, then OS, then
// FriendlyName), then the User-Agent, then the DeviceType. A rule's evidence
// is the strongest field it has a condition on; rules are tried in evidence
// order, file order within the same evidence, and every field of the result
// comes from the first matching rule that yields it. An OS version is taken
// only from a rule whose os-name is the OS already settled.
//
// An administrator's file adds to the embedded one: a rule with the name of
// an embedded rule replaces it in place; other rules are tried before all
// embedded rules of the same evidence; "disable NAME" removes an embedded
// rule; "ios-build BUILD VERSION" adds to (or corrects) the iOS build table.

//go:embed clientrules.txt
var clientRulesData string

// Evidence kinds, strongest first.
const (
	evModel uint8 = iota
	evOS
	evFriendly
	evUA
	evType
	evCount
)

var evKeywords = [evCount]string{
	evModel:    "device-model",
	evOS:       "device-os",
	evFriendly: "friendly-name",
	evUA:       "ua",
	evType:     "type",
}

var evNames = [evCount]string{
	evModel:    "DeviceInformation Model",
	evOS:       "DeviceInformation OS",
	evFriendly: "DeviceInformation FriendlyName",
	evUA:       "User-Agent",
	evType:     "DeviceType",
}

// What a rule can yield (and what Identify has settled).
const (
	yFamily uint8 = 1 << iota
	yOS
	yVersion
	yBuild
	yModel
	yApp
)

// MaxRulesFileSize bounds an administrator's rules file.
const MaxRulesFileSize = 1 << 20

// RuleError is one problem in a rules file, at File:Line:Column.
type RuleError struct {
	File         string
	Line, Column int // 1-based
	Msg          string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// RuleErrors is every problem found in a rules file, sorted by position.
type RuleErrors []*RuleError

func (es RuleErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// RuleExample is one example of a rule: inputs and the expected result.
type RuleExample struct {
	UA, DeviceType, DeviceOS, DeviceModel, FriendlyName string
	Family                                              Family
	OS                                                  OSFamily
	Version                                             string // "" = unknown
	HasOS, HasVersion                                   bool
	Line                                                int
}

// Info returns the example's DeviceInformation, or nil when it gives none.
func (x *RuleExample) Info() *DeviceInfo {
	if x.DeviceOS == "" && x.DeviceModel == "" && x.FriendlyName == "" {
		return nil
	}
	return &DeviceInfo{OS: x.DeviceOS, Model: x.DeviceModel, FriendlyName: x.FriendlyName}
}

// rule is one compiled rule.
type rule struct {
	name, source string
	file         string
	line         int
	conds        [evCount][]pattern
	family       Family
	platform     OSFamily
	yields       uint8
	ev           uint8 // strongest evidence it has a condition on
	evMask       uint8 // the evidence kinds it has conditions on
	// hint is the lower-cased literal prefix every alternative of its
	// condition on ev starts with ("apple-"): a value without it cannot
	// match, which Identify checks before anything else.
	hint      string
	examples  []RuleExample
	fromAdmin bool
}

// ruleFile is a parsed (not yet merged) rules file.
type ruleFile struct {
	name     string
	rules    []rule
	builds   []clientIOSBuild
	disabled map[string]int // name -> line
}

// Rules is a compiled rule set. It is immutable and safe for concurrent use;
// Identify on it does not allocate. The nil *Rules identifies with the
// embedded rules.
type Rules struct {
	rules  []rule // in evidence order, file order within one evidence
	builds []clientIOSBuild
	// bucket[ev] lists, for each lower-cased first byte, the rules of that
	// evidence whose condition on it may match a value starting with that
	// byte: idx[start[ev][b]:start[ev][b+1]].
	start [evCount][257]uint32
	idx   []uint16
	memo  *identMemo // rules_memo.go; nil when the rules read FriendlyName
	reads uint8      // the evidence kinds some rule reads (evMask of all)
}

var defaultRules = sync.OnceValue(func() *Rules {
	rs, err := compileRules(nil)
	if err != nil {
		// The file is embedded at build time; TestEmbeddedRules keeps it valid.
		panic("eas: clientrules.txt: " + err.Error())
	}
	return rs
})

// DefaultRules returns the embedded rule set.
func DefaultRules() *Rules { return defaultRules() }

// Identify classifies a client with the embedded rules (see Rules.Identify).
func Identify(userAgent, deviceType []byte, info *DeviceInfo) Client {
	return defaultRules().Identify(userAgent, deviceType, info)
}

// NewRules parses an administrator's rules file (data, named filename in
// errors), merges it with the embedded rules and checks every example of the
// file's rules against the result. Problems come back as RuleErrors with
// the file's own line and column numbers.
func NewRules(filename string, data []byte) (*Rules, error) {
	if len(data) > MaxRulesFileSize {
		return nil, RuleErrors{{File: filename, Line: 1, Column: 1, Msg: fmt.Sprintf("file larger than %d bytes", MaxRulesFileSize)}}
	}
	f, errs := parseRuleFile(filename, string(data), true)
	if len(errs) > 0 {
		return nil, errs
	}
	rs, err := compileRules(f)
	if err != nil {
		return nil, err
	}
	var bad RuleErrors
	for i := range rs.rules {
		r := &rs.rules[i]
		if !r.fromAdmin {
			continue
		}
		for j := range r.examples {
			if msg := rs.checkExample(&r.examples[j]); msg != "" {
				bad = append(bad, &RuleError{File: filename, Line: r.examples[j].Line, Column: 3, Msg: "rule " + r.name + ": example: " + msg})
			}
		}
	}
	if len(bad) > 0 {
		return nil, bad.sorted()
	}
	return rs, nil
}

func (es RuleErrors) sorted() RuleErrors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	return es
}

// parseRuleFile parses one rules file. admin allows "disable".
func parseRuleFile(filename, data string, admin bool) (*ruleFile, RuleErrors) {
	f := &ruleFile{name: filename, disabled: map[string]int{}}
	var errs RuleErrors
	errAt := func(line, col int, format string, args ...any) {
		if len(errs) < 100 {
			errs = append(errs, &RuleError{File: filename, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
		}
	}
	var cur *rule
	curErrs := 0 // len(errs) when cur started: a rule with a bad line gets no summary errors
	names := map[string]int{}
	builds := map[uint64]int{}
	finish := func() {
		if cur == nil {
			return
		}
		r := cur
		cur = nil
		if len(errs) > curErrs {
			return
		}
		has := false
		for ev := uint8(0); ev < evCount; ev++ {
			if len(r.conds[ev]) > 0 {
				if !has {
					r.ev = ev
				}
				has = true
				r.evMask |= 1 << ev
			}
		}
		switch {
		case !has:
			errAt(r.line, 1, "rule %s has no condition (ua, type, device-os, device-model or friendly-name)", r.name)
		case r.yields == 0:
			errAt(r.line, 1, "rule %s yields nothing (family, os-name or a capture)", r.name)
		case r.source == "":
			errAt(r.line, 1, "rule %s has no source line (say where its strings were published)", r.name)
		case len(r.examples) == 0:
			errAt(r.line, 1, "rule %s has no example (give a real string it matches)", r.name)
		case r.yields&(yVersion|yBuild) != 0 && r.yields&yOS == 0:
			errAt(r.line, 1, "rule %s reads an OS version but has no os-name", r.name)
		default:
			f.rules = append(f.rules, *r)
		}
	}
	line := 0
	for len(data) > 0 {
		line++
		var l string
		if i := strings.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, ""
		}
		l = strings.TrimRight(l, "\r")
		indent := len(l) - len(strings.TrimLeft(l, " \t"))
		body := strings.TrimRight(l[indent:], " \t")
		if body == "" || body[0] == '#' {
			continue
		}
		kw, val := body, ""
		if i := strings.IndexAny(body, " \t"); i >= 0 {
			kw = body[:i]
			val = strings.TrimLeft(body[i:], " \t")
		}
		vcol := indent + (len(body) - len(val)) + 1
		kcol := indent + 1
		if val == "" && kw != "" {
			errAt(line, kcol, "%s needs a value", kw)
			continue
		}
		switch kw {
		case "rule":
			finish()
			curErrs = len(errs)
			if !validRuleName(val) {
				errAt(line, vcol, "rule name %q: use letters, digits, '-', '_' and '.'", val)
				cur = &rule{name: val, line: line} // keep parsing its lines
				continue
			}
			if prev, dup := names[val]; dup {
				errAt(line, vcol, "rule %s is defined twice (first at line %d)", val, prev)
			}
			names[val] = line
			cur = &rule{name: val, line: line, file: filename, fromAdmin: admin}
		case "ios-build":
			finish()
			b, v, ok := strings.Cut(val, " ")
			v = strings.TrimSpace(v)
			key, okb := clientIOSBuildKey([]byte(b))
			ver, n, okv := clientParseVersion([]byte(v))
			switch {
			case !ok:
				errAt(line, vcol, "want \"ios-build BUILD VERSION\", e.g. \"ios-build 23C71 26.2.1\"")
			case !okb:
				errAt(line, vcol, "malformed iOS build %q (want e.g. 23C71)", b)
			case !okv || n != len(v):
				errAt(line, vcol+len(b)+1, "malformed version %q", v)
			default:
				if prev, dup := builds[key]; dup {
					errAt(line, vcol, "build %s listed twice (first at line %d)", b, prev)
				}
				builds[key] = line
				f.builds = append(f.builds, clientIOSBuild{key: key, major: ver.Major, minor: ver.Minor, patch: ver.Patch})
			}
		case "disable":
			finish()
			if !admin {
				errAt(line, kcol, "disable is for an administrator's file")
				continue
			}
			f.disabled[val] = line
		default:
			if cur == nil {
				errAt(line, kcol, "%s outside a rule (start one with \"rule NAME\")", kw)
				continue
			}
			parseRuleLine(cur, kw, val, line, kcol, vcol, errAt)
		}
	}
	finish()
	return f, errs
}

func parseRuleLine(r *rule, kw, val string, line, kcol, vcol int, errAt func(int, int, string, ...any)) {
	switch kw {
	case "source":
		r.source = val
		return
	case "family":
		fam, ok := ParseFamily(val)
		if !ok {
			errAt(line, vcol, "rule %s: unknown family %q (want a slug such as ios-mail, outlook-mobile, unknown)", r.name, val)
			return
		}
		r.family = fam
		r.yields |= yFamily
		return
	case "os-name":
		o, ok := ParseOSFamily(val)
		if !ok || o == OSUnknown {
			errAt(line, vcol, "rule %s: unknown OS %q (want iOS, Android, Windows, Windows Phone, Windows Mobile, BlackBerry, Linux or macOS)", r.name, val)
			return
		}
		r.platform = o
		r.yields |= yOS
		return
	case "example":
		x, col, msg := parseExample(val)
		if msg != "" {
			errAt(line, vcol+col, "rule %s: example: %s", r.name, msg)
			return
		}
		x.Line = line
		r.examples = append(r.examples, x)
		return
	}
	for ev := uint8(0); ev < evCount; ev++ {
		if kw != evKeywords[ev] {
			continue
		}
		p, col, msg := compilePattern(val)
		if msg != "" {
			errAt(line, vcol+col, "rule %s: %s: %s", r.name, kw, msg)
			return
		}
		for other := uint8(0); other < evCount; other++ {
			if other == ev {
				continue
			}
			for _, q := range r.conds[other] {
				if q.caps&p.caps != 0 {
					errAt(line, vcol, "rule %s: a capture may be read from one field only (also in %s)", r.name, evKeywords[other])
					return
				}
			}
		}
		r.conds[ev] = append(r.conds[ev], p)
		if p.caps&(1<<capVersion|1<<capIOSLegacy) != 0 {
			r.yields |= yVersion | yBuild
		}
		if p.caps&(1<<capBuild) != 0 {
			r.yields |= yBuild | yVersion
		}
		if p.caps&(1<<capModel) != 0 {
			r.yields |= yModel
		}
		if p.caps&(1<<capApp) != 0 {
			r.yields |= yApp
		}
		return
	}
	errAt(line, kcol, "unknown keyword %q (want source, ua, type, device-os, device-model, friendly-name, family, os-name or example)", kw)
}

func validRuleName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !clientIsLetter(c) && !clientIsDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// parseExample reads `key=value ... => key=value ...`.
func parseExample(s string) (RuleExample, int, string) {
	var x RuleExample
	right := false
	seenFamily := false
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		if strings.HasPrefix(s[i:], "=>") {
			if right {
				return x, i, "second \"=>\""
			}
			right = true
			i += 2
			continue
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq <= 0 {
			return x, i, "want key=value"
		}
		kstart := i
		key := s[i : i+eq]
		vstart := i + eq + 1
		var val string
		if vstart < len(s) && s[vstart] == '"' {
			q, err := strconv.QuotedPrefix(s[vstart:])
			if err != nil {
				return x, vstart, "bad quoted string"
			}
			val, _ = strconv.Unquote(q)
			i = vstart + len(q)
		} else {
			end := vstart
			for end < len(s) && s[end] != ' ' && s[end] != '\t' {
				end++
			}
			val = s[vstart:end]
			i = end
		}
		at := vstart
		switch {
		case !right && key == "ua":
			x.UA = val
		case !right && key == "type":
			x.DeviceType = val
		case !right && key == "device-os":
			x.DeviceOS = val
		case !right && key == "device-model":
			x.DeviceModel = val
		case !right && key == "friendly-name":
			x.FriendlyName = val
		case right && key == "family":
			f, ok := ParseFamily(val)
			if !ok {
				return x, at, fmt.Sprintf("unknown family %q", val)
			}
			x.Family, seenFamily = f, true
		case right && key == "os":
			if val != "" {
				o, ok := ParseOSFamily(val)
				if !ok {
					return x, at, fmt.Sprintf("unknown OS %q", val)
				}
				x.OS = o
			}
			x.HasOS = true
		case right && key == "version":
			if val != "" {
				if _, ok := ParseOSVersion(val); !ok {
					return x, at, fmt.Sprintf("malformed version %q", val)
				}
			}
			x.Version, x.HasVersion = val, true
		default:
			return x, kstart, fmt.Sprintf("unexpected key %q (inputs: ua, type, device-os, device-model, friendly-name; after =>: family, os, version)", key)
		}
	}
	if !right || !seenFamily {
		return x, 0, "want inputs, \"=>\" and at least family=SLUG"
	}
	if x.UA == "" && x.DeviceType == "" && x.DeviceOS == "" && x.DeviceModel == "" && x.FriendlyName == "" {
		return x, 0, "no input"
	}
	return x, 0, ""
}

// checkExample runs x through rs and says what differs ("" when all agrees).
func (rs *Rules) checkExample(x *RuleExample) string {
	c := rs.Identify([]byte(x.UA), []byte(x.DeviceType), x.Info())
	var diffs []string
	if c.Family != x.Family {
		diffs = append(diffs, fmt.Sprintf("family %s, want %s", c.Family.Slug(), x.Family.Slug()))
	}
	if x.HasOS && c.OS != x.OS {
		diffs = append(diffs, fmt.Sprintf("os %q, want %q", c.OS, x.OS))
	}
	if x.HasVersion {
		want := ""
		if v, ok := ParseOSVersion(x.Version); ok {
			want = v.String()
		}
		if got := c.OSVersion.String(); got != want {
			diffs = append(diffs, fmt.Sprintf("version %q, want %q", got, want))
		}
	}
	return strings.Join(diffs, "; ")
}

// compileRules merges the embedded file with an administrator's (may be nil).
func compileRules(admin *ruleFile) (*Rules, error) {
	base, errs := parseRuleFile("eas/clientrules.txt", clientRulesData, false)
	if len(errs) > 0 {
		return nil, errs
	}
	rules := base.rules
	builds := append([]clientIOSBuild(nil), clientIOSBuilds...)
	if admin != nil {
		var errs RuleErrors
		pos := map[string]int{}
		for i, r := range rules {
			pos[r.name] = i
		}
		for name, line := range admin.disabled {
			if _, ok := pos[name]; !ok {
				errs = append(errs, &RuleError{File: admin.name, Line: line, Column: 9, Msg: fmt.Sprintf("disable %s: no embedded rule has that name", name)})
			}
		}
		if len(errs) > 0 {
			return nil, errs.sorted()
		}
		var added []rule
		for _, r := range admin.rules {
			if i, ok := pos[r.name]; ok {
				rules[i] = r // replaces the embedded rule in place
			} else {
				added = append(added, r)
			}
		}
		kept := added
		for _, r := range rules {
			if _, off := admin.disabled[r.name]; !off {
				kept = append(kept, r)
			}
		}
		rules = kept
		for _, b := range admin.builds {
			replaced := false
			for i := range builds {
				if builds[i].key == b.key {
					builds[i] = b
					replaced = true
				}
			}
			if !replaced {
				builds = append(builds, b)
			}
		}
		sort.Slice(builds, func(i, j int) bool { return builds[i].key < builds[j].key })
	}
	if len(rules) > 0xFFFF {
		return nil, RuleErrors{{File: "eas/clientrules.txt", Line: 1, Column: 1, Msg: "too many rules"}}
	}
	// Evidence order; file order (admin rules first) within one evidence.
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].ev < rules[j].ev })
	for i := range rules {
		rules[i].hint = commonPrefix(rules[i].conds[rules[i].ev])
	}
	rs := &Rules{rules: rules, builds: builds}
	for i := range rules {
		rs.reads |= rules[i].evMask
	}
	if rs.reads&(1<<evFriendly) == 0 {
		rs.memo = newIdentMemo() // rules_memo.go
	}
	for ev := uint8(0); ev < evCount; ev++ {
		for b := 0; b < 256; b++ {
			rs.start[ev][b] = uint32(len(rs.idx))
			for i := range rules {
				if rules[i].mayStartWith(ev, b) {
					rs.idx = append(rs.idx, uint16(i))
				}
			}
		}
		rs.start[ev][256] = uint32(len(rs.idx))
	}
	return rs, nil
}

// commonPrefix is the literal prefix all patterns start with (may be "").
func commonPrefix(ps []pattern) string {
	prefix := ""
	for i, p := range ps {
		lit := ""
		if p.segs[0].kind == segLit {
			lit = p.segs[0].lit
		}
		if i == 0 {
			prefix = lit
			continue
		}
		n := 0
		for n < len(prefix) && n < len(lit) && prefix[n] == lit[n] {
			n++
		}
		prefix = prefix[:n]
	}
	return prefix
}

// hasHint reports whether v starts with the lower-cased hint.
func hasHint(v []byte, hint string) bool {
	if len(v) < len(hint) {
		return false
	}
	for i := 0; i < len(hint); i++ {
		if clientLower(v[i]) != hint[i] {
			return false
		}
	}
	return true
}

// mayStartWith reports whether r belongs in the bucket of evidence ev for
// values starting with lower-cased byte b: it is a rule of evidence ev (its
// strongest) and its condition on ev may match such a value. Rules are
// tried only under their strongest evidence.
func (r *rule) mayStartWith(ev uint8, b int) bool {
	if r.ev != ev {
		return false
	}
	for _, p := range r.conds[ev] {
		if p.first < 0 || p.first == b {
			return true
		}
	}
	return false
}

// identInputs are the trimmed fields Identify looks at, by evidence kind.
type identInputs [evCount][]byte

func makeInputs(userAgent, deviceType []byte, info *DeviceInfo) identInputs {
	var in identInputs
	in[evUA] = clientTrimSpace(userAgent)
	in[evType] = clientTrimSpace(deviceType)
	if info != nil {
		if len(in[evUA]) == 0 {
			in[evUA] = clientTrimSpace(clientStrBytes(info.UserAgent))
		}
		in[evModel] = clientTrimSpace(clientStrBytes(info.Model))
		in[evOS] = clientTrimSpace(clientStrBytes(info.OS))
		in[evFriendly] = clientTrimSpace(clientStrBytes(info.FriendlyName))
	}
	for i := range in {
		if len(in[i]) > ruleMaxInput {
			in[i] = in[i][:ruleMaxInput]
		}
	}
	return in
}

// matches reports whether every condition of r holds, collecting captures.
// When it fails, failed is the evidence kind of the first condition that
// did not hold.
func (r *rule) matches(in *identInputs, cs *capSet) (ok bool, failed uint8) {
	for ev := uint8(0); ev < evCount; ev++ {
		if r.evMask&(1<<ev) == 0 {
			continue
		}
		alts := r.conds[ev]
		v := in[ev]
		hit := false
		if len(v) > 0 {
			for i := range alts {
				if alts[i].match(v, cs, ev) {
					hit = true
					break
				}
			}
		}
		if !hit {
			return false, ev
		}
	}
	return true, 0
}

// apply sets from r and its captures every field not settled yet, and
// returns what it set.
func (rs *Rules) apply(c *Client, known *uint8, r *rule, cs *capSet, in *identInputs) uint8 {
	gave := uint8(0)
	get := func(k uint8) []byte {
		s := cs.at[k]
		return in[cs.from[k]][s.start:s.end]
	}
	if r.yields&yFamily != 0 && *known&yFamily == 0 {
		c.Family = r.family
		gave |= yFamily
	}
	if r.yields&yOS != 0 && *known&yOS == 0 {
		c.OS = r.platform
		gave |= yOS
	}
	*known |= gave
	if r.yields&yOS != 0 && c.OS == r.platform && r.yields&(yVersion|yBuild) != 0 {
		var v OSVersion
		var build [24]byte
		var b []byte
		if cs.set&(1<<capVersion) != 0 {
			v = cs.ver
			if v.Major > maxOSMajor {
				v = OSVersion{} // "iOS/1099.999": no OS has such a version
			}
		}
		if cs.set&(1<<capIOSLegacy) != 0 {
			key, _, _ := clientIOSLegacyKey(get(capIOSLegacy))
			b = clientAppendIOSBuild(build[:0], key)
			if !v.Known {
				v = rs.iosVersion(key, r.platform)
			}
		}
		if cs.set&(1<<capBuild) != 0 && b == nil {
			if cand := get(capBuild); clientIsIOSBuild(cand) && (r.platform == OSiOS || r.platform == OSmacOS) {
				b = cand
				if !v.Known && r.platform == OSiOS {
					key, _ := clientIOSBuildKey(cand)
					v = rs.iosVersion(key, r.platform)
				}
			}
		}
		switch {
		case *known&yVersion == 0 && v.Known:
			c.OSVersion = v
			gave |= yVersion
			if len(b) > 0 && *known&yBuild == 0 {
				c.BuildLen = uint8(copy(c.Build[:], b))
				gave |= yBuild
			}
		case *known&yBuild == 0 && len(b) > 0 && (*known&yVersion == 0 || sameVersion(c.OSVersion, v)):
			c.BuildLen = uint8(copy(c.Build[:], b))
			gave |= yBuild
		}
	}
	if cs.set&(1<<capModel) != 0 && *known&yModel == 0 {
		c.Model = get(capModel)
		gave |= yModel
	}
	if cs.set&(1<<capApp) != 0 && *known&yApp == 0 {
		c.AppLen = uint8(copy(c.App[:], get(capApp)))
		gave |= yApp
	}
	*known |= gave
	return gave
}

// sameVersion: a build read with version b belongs to the settled version a
// (an approximate b: to the same major).
func sameVersion(a, b OSVersion) bool {
	if !a.Known || !b.Known {
		return false
	}
	if b.Approx || a.Approx {
		return a.Major == b.Major
	}
	return a == b
}

// iosVersion looks a build up in the table; a build that is not there
// gives the major version from its train, marked Approx.
func (rs *Rules) iosVersion(key uint64, platform OSFamily) OSVersion {
	if platform != OSiOS {
		return OSVersion{}
	}
	if v, ok := lookupIOSBuild(rs.builds, key); ok {
		return v
	}
	if major, ok := clientIOSMajorFromTrain(key >> 48); ok {
		return OSVersion{Major: major, Known: true, Approx: true}
	}
	return OSVersion{}
}

// maxOSMajor is the highest major version read as an OS version.
const maxOSMajor = 99

const yAll = yFamily | yOS | yVersion | yBuild | yModel | yApp

// Identify classifies a client from the request's User-Agent, its
// DeviceType and, when known, the DeviceInformation the device reported
// (info may be nil; its UserAgent stands in for an empty userAgent). It
// does not allocate; Client.Model aliases the inputs. A nil rs uses the
// embedded rules.
func (rs *Rules) Identify(userAgent, deviceType []byte, info *DeviceInfo) Client {
	if rs == nil {
		rs = defaultRules()
	}
	in := makeInputs(userAgent, deviceType, info)
	if rs.memo == nil {
		c, _, _, _ := rs.identify(&in)
		return c
	}
	// What no rule reads cannot change the result: it stays out of the key.
	key := rs.memoKey(&in)
	k := rs.memo.hash(&key)
	if c, ok := rs.memo.lookup(k, &key); ok {
		return c
	}
	c, modelEv, model, hasModel := rs.identify(&in)
	rs.memo.store(k, &key, c, modelEv, model, hasModel)
	return c
}

// identify runs the rules over in. It also says where Client.Model was
// captured (in[modelEv][model.start:model.end]), for the memo.
func (rs *Rules) identify(in *identInputs) (c Client, modelEv uint8, model span, hasModel bool) {
	known := uint8(0)
	for ev := uint8(0); ev < evCount; ev++ {
		v := in[ev]
		if len(v) == 0 {
			continue
		}
		b := int(clientLower(v[0]))
		var cs capSet
		for _, ri := range rs.idx[rs.start[ev][b]:rs.start[ev][b+1]] {
			r := &rs.rules[ri]
			if r.yields&^known == 0 || !hasHint(v, r.hint) {
				continue
			}
			cs.set = 0
			if ok, _ := r.matches(in, &cs); !ok {
				continue
			}
			if gave := rs.apply(&c, &known, r, &cs, in); gave&yModel != 0 {
				modelEv, model, hasModel = cs.from[capModel], cs.at[capModel], true
			}
			if known == yAll {
				return
			}
		}
	}
	return
}

// RuleTrace says what one rule did for one classification.
type RuleTrace struct {
	Rule     string // rule name
	File     string // file and line of the rule
	Line     int
	Evidence string // "User-Agent", "DeviceInformation OS", …
	Outcome  string // "matched", "no match", "skipped"
	Reason   string // why it did not match, or what it gave
}

// Explain classifies like Identify and says, for every rule in the order
// they are tried, whether it matched, what it gave, or why it did not match.
// It allocates; it is for `easgate classify --explain`, not the hot path.
func (rs *Rules) Explain(userAgent, deviceType []byte, info *DeviceInfo) (Client, []RuleTrace) {
	if rs == nil {
		rs = defaultRules()
	}
	in := makeInputs(userAgent, deviceType, info)
	var c Client
	known := uint8(0)
	var out []RuleTrace
	for i := range rs.rules {
		r := &rs.rules[i]
		t := RuleTrace{Rule: r.name, File: r.file, Line: r.line, Evidence: evNames[r.ev]}
		var cs capSet
		ok, failed := r.matches(&in, &cs)
		switch {
		case !ok:
			t.Outcome = "no match"
			if len(in[failed]) == 0 {
				t.Reason = fmt.Sprintf("needs %s; the request has none", evNames[failed])
			} else {
				pats := make([]string, len(r.conds[failed]))
				for j, p := range r.conds[failed] {
					pats[j] = strconv.Quote(p.src)
				}
				t.Reason = fmt.Sprintf("%s %q does not match %s", evKeywords[failed], in[failed], strings.Join(pats, " or "))
			}
		case r.yields&^known == 0:
			t.Outcome = "skipped"
			t.Reason = "matches, but everything it yields is already settled by an earlier rule"
		default:
			gave := rs.apply(&c, &known, r, &cs, &in)
			t.Outcome = "matched"
			t.Reason = describeGave(&c, gave)
		}
		out = append(out, t)
	}
	return c, out
}

func describeGave(c *Client, gave uint8) string {
	var parts []string
	if gave&yFamily != 0 {
		parts = append(parts, "family "+c.Family.String())
	}
	if gave&yOS != 0 {
		parts = append(parts, "os "+c.OS.String())
	}
	if gave&yVersion != 0 {
		parts = append(parts, "os version "+c.OSVersion.String())
	}
	if gave&yBuild != 0 {
		parts = append(parts, "build "+c.BuildString())
	}
	if gave&yModel != 0 {
		parts = append(parts, "model "+string(c.Model))
	}
	if gave&yApp != 0 {
		parts = append(parts, "app version "+c.AppVersion())
	}
	if len(parts) == 0 {
		return "gave nothing new (its facts disagree with what is settled)"
	}
	return "gave " + strings.Join(parts, ", ")
}

// RuleInfo describes one rule for tools and tests.
type RuleInfo struct {
	Name, Source, File string
	Line               int
	Evidence           string
	Examples           []RuleExample
}

// List returns the rules in the order they are tried.
func (rs *Rules) List() []RuleInfo {
	if rs == nil {
		rs = defaultRules()
	}
	out := make([]RuleInfo, len(rs.rules))
	for i := range rs.rules {
		r := &rs.rules[i]
		out[i] = RuleInfo{Name: r.name, Source: r.source, File: r.file, Line: r.line, Evidence: evNames[r.ev], Examples: r.examples}
	}
	return out
}

// CheckExample classifies x with rs and returns "" when the result agrees
// with what x expects, else what differs.
func (rs *Rules) CheckExample(x *RuleExample) string {
	if rs == nil {
		rs = defaultRules()
	}
	return rs.checkExample(x)
}
