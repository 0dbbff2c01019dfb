package policy

import (
	"strings"

	"github.com/easgate/easgate/eas"
)

// userSet is a set of users and user globs. Users are compared the way
// eas.SameUser compares them: "CORP\jdoe", "jdoe" and "jdoe@corp.example.com"
// name the same person; two different explicit UPN domains do not. Exact
// entries are indexed by their lower-cased user part so that membership costs
// one map lookup and no allocation.
type userSet struct {
	all   bool
	exact map[string][]string // lower-cased user part -> full entries (lower-cased)
	globs []string            // lower-cased globs such as "*@corp.example.com"
}

func newUserSet(entries []string) *userSet {
	s := &userSet{exact: map[string][]string{}}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "all" || e == "*":
			s.all = true
		case strings.Contains(e, "*"):
			s.globs = append(s.globs, e)
		case e != "":
			u, _ := eas.SplitUser([]byte(e))
			s.exact[string(u)] = append(s.exact[string(u)], e)
		}
	}
	return s
}

// contains reports whether user is in the set. user is as sent by the phone.
func (s *userSet) contains(user []byte) bool {
	if s == nil {
		return false
	}
	if s.all {
		return true
	}
	u, _ := eas.SplitUser(user)
	var buf [128]byte
	if len(u) <= len(buf) {
		low := buf[:len(u)]
		for i, c := range u {
			low[i] = lowerASCII(c)
		}
		for _, e := range s.exact[string(low)] {
			if eas.SameUser([]byte(e), user) {
				return true
			}
		}
	}
	for _, g := range s.globs {
		if globFold(g, user) {
			return true
		}
	}
	return false
}
