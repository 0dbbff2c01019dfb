package proxy

import (
	"github.com/easgate/easgate/policy"
)

// tableImporter is a compliance source that takes a table another node
// pulled or read (sources.Graph, sources.File). Its record in
// policy.BucketCompliance is named after the source (sources.GraphShareKey,
// sources.FileShareKey).
type tableImporter interface {
	Name() string
	Import([]byte) error
}

// sharedRegisterComplianceFeed installs the table the leading node pulled
// from Graph or read from its compliance file (now, and whenever it
// publishes a new one) into this node's source, and lets every held
// request re-decide on the new verdicts.
func (s *Server) sharedRegisterComplianceFeed(st *state, ss policy.SharedStore) {
	apply := func(k string, v []byte) {
		cur := s.cur.Load()
		if cur == nil || cur.enf == nil || cur.enf.acc == nil {
			return
		}
		g, ok := cur.enf.acc.Source.(tableImporter)
		if !ok || g.Name() != k {
			return
		}
		if err := g.Import(v); err != nil {
			s.log.Warn().Err(err).Str("source", k).Msg("compliance: the table another node published does not decode")
			return
		}
		s.registry.WakeAll()
	}
	ss.Subscribe(policy.BucketCompliance, func(k string, v []byte) {
		if v != nil {
			apply(k, v)
		}
	})
	if g, ok := st.enf.acc.Source.(tableImporter); ok {
		if v, found, err := ss.Get(policy.BucketCompliance, g.Name()); err == nil && found {
			apply(g.Name(), v)
		}
	}
}
