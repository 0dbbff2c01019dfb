package proxy

// Per-configuration parts.
//
// Each state has its own authentication (authn.go) and enforcement
// (enforce.go), built from its configuration; each also has a process-wide
// side that outlives reloads (the lockout shield's flush loop and the auth
// metrics; the quarantine emulator, the admin API and the decision
// metrics). The Server drives every part through the same life, in the
// order of parts:
//
//	New:      build(st, nil), then attach(st, nil): the first attach also
//	          creates the part's process-wide side.
//	Reload:   build(st, old) for every part, then attach(st, old) for every
//	          part, then the swap, then swapped(st).
//	retire:   retire(old), once the old state is drained: it closes what the
//	          new state did not take over.
//	Shutdown: close(st) for the last state: the process-wide side flushes
//	          and stops.
//
// build does everything that can fail and must leave what runs as it is,
// so that a failed reload keeps the running configuration. attach makes
// the part live and takes over from prev what outlives a configuration; it
// runs once every part of the state is built, and fails only at start
// (prev nil). Enforcement comes last: its build ends with access.Build,
// which takes the device table and store over from the running state, the
// point of no return of a reload.
type part interface {
	build(s *Server, st, prev *state) error
	attach(s *Server, st, prev *state) error
	swapped(s *Server, st *state)
	retire(st *state)
	close(s *Server, st *state)
}

var parts = [...]part{authnPart{}, enforcementPart{}}

// buildParts builds and attaches every part of st; prev is the running
// state (nil at start).
func (s *Server) buildParts(st, prev *state) error {
	for _, p := range parts {
		if err := p.build(s, st, prev); err != nil {
			return err
		}
	}
	for _, p := range parts {
		if err := p.attach(s, st, prev); err != nil {
			return err
		}
	}
	return nil
}

// partsSwapped tells every part that st is current now.
func (s *Server) partsSwapped(st *state) {
	for _, p := range parts {
		p.swapped(s, st)
	}
}

// retireParts closes what the drained state st still holds.
func retireParts(st *state) {
	for _, p := range parts {
		p.retire(st)
	}
}

// closeParts stops every part at shutdown (or after a failed New: each
// part's close copes with a part that was never built).
func (s *Server) closeParts(st *state) {
	for _, p := range parts {
		p.close(s, st)
	}
}
