package proxy

import "github.com/easgate/easgate/proxy/upstream"

// healthChanged logs and exports a CAS's health change seen by st's health
// checks (upstream.Pool.CheckHealth).
func (s *Server) healthChanged(st *state, b *upstream.Backend, healthy bool, why string) {
	v := 0.0
	if healthy {
		v = 1
	}
	if s.cur.Load() == st {
		s.metrics.healthy.WithLabelValues(b.Name).Set(v)
	}
	ev := s.log.Warn().Str("upstream", b.Name).Bool("healthy", healthy)
	if healthy {
		ev.Msg("upstream health changed: back in rotation")
	} else {
		ev.Str("reason", why).Int("failed_probes", st.hc.UnhealthyAfter).Msg("upstream health changed: marked down: " + why)
	}
	s.notePanic(st)
}

// notePanic logs when every CAS of st has just been marked down (panic
// mode: requests go to all of them anyway, see upstream.Pool.Pick) and when one is
// back. Called after any health change.
func (s *Server) notePanic(st *state) {
	switch st.pool.NotePanic() {
	case 1:
		s.metrics.panicMode.Set(1)
		s.log.Error().Int("upstreams", len(st.pool.Backends)).Bool("panic_mode", true).
			Msg("every CAS is marked down: panic mode, requests go to all of them anyway (a wrong health probe must not stop mail); check upstreams.health_check")
	case -1:
		s.metrics.panicMode.Set(0)
		s.log.Warn().Int("healthy", st.pool.HealthyCount()).Bool("panic_mode", false).
			Msg("a CAS is healthy again: panic mode ended, only healthy CAS servers get requests")
	}
}

// noteState sets the gauges that follow the running configuration: the
// held-request limit (for alerts on held polls near it) and panic mode.
func (s *Server) noteState(st *state) {
	s.metrics.heldLimit.Set(float64(st.maxHeld))
	// A new state starts in the panic mode its health says (health is
	// carried over a reload), so the next change is logged once.
	if st.pool.ResetPanic() {
		s.metrics.panicMode.Set(1)
	} else {
		s.metrics.panicMode.Set(0)
	}
}
