package policy

import (
	"fmt"
	"strings"

	"github.com/easgate/easgate/eas"
)

// userSet is a set of users and user globs. Entries are kept in the
// canonical form of eas.Domains (auth.domains): "alice", "CORP\alice" and
// "alice@corp.example.com" are one entry when the domains say so, and two
// different domains never are. Membership is one map lookup on the
// canonical user, then the globs; no allocation.
type userSet struct {
	all   bool
	exact map[string]struct{} // canonical user names
	globs []string            // lower-cased globs such as "*@corp.example.com"
}

// newUserSet canonicalises entries with doms. An entry that names a domain
// not in auth.domains is an error: it could never match.
func newUserSet(entries []string, doms *eas.Domains) (*userSet, error) {
	s := &userSet{exact: map[string]struct{}{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "all" || e == "*":
			s.all = true
		case strings.Contains(e, "*"):
			s.globs = append(s.globs, strings.ToLower(e))
		case e != "":
			c, err := doms.Canonical(e)
			if err != nil {
				return nil, fmt.Errorf("user %q: %w", e, err)
			}
			s.exact[c] = struct{}{}
		}
	}
	return s, nil
}

// contains reports whether user, in canonical form (Subject.User), is in the set.
func (s *userSet) contains(user []byte) bool {
	if s == nil {
		return false
	}
	if s.all {
		return true
	}
	if _, ok := s.exact[string(user)]; ok {
		return true
	}
	for _, g := range s.globs {
		if globFold(g, user) {
			return true
		}
	}
	return false
}
