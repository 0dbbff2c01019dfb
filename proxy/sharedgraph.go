package proxy

import (
	"github.com/easgate/easgate/policy"
)

// tableImporter is a compliance source that takes a table another node
// pulled (sources.Graph).
type tableImporter interface{ Import([]byte) error }

// sharedRegisterComplianceFeed installs the Graph table the leading node
// pulled (now, and whenever it publishes a new one) into this node's
// source, and lets every held request re-decide on the new verdicts.
func (s *Server) sharedRegisterComplianceFeed(st *state, ss policy.SharedStore) {
	apply := func(v []byte) {
		cur := s.cur.Load()
		if cur == nil || cur.enf == nil || cur.enf.acc == nil {
			return
		}
		g, ok := cur.enf.acc.Source.(tableImporter)
		if !ok {
			return
		}
		if err := g.Import(v); err != nil {
			s.log.Warn().Err(err).Msg("graph: the table another node published does not decode")
			return
		}
		s.registry.WakeAll()
	}
	ss.Subscribe(policy.BucketCompliance, func(k string, v []byte) {
		if k == "graph" && v != nil {
			apply(v)
		}
	})
	if _, ok := st.enf.acc.Source.(tableImporter); ok {
		if v, found, err := ss.Get(policy.BucketCompliance, "graph"); err == nil && found {
			apply(v)
		}
	}
}
