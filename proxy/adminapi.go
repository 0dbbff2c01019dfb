package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/admin"
)

// The management plane on the admin listener (proxy/admin): the API under
// /api/v1 and the token check in front of every admin endpoint. The
// gateway hands the API a small adminGateway; admin actions reach held
// requests through the held registry (Server.registry, held.Registry.Wake), so an override
// answers a device's held Ping at once.

// adminGateway is what proxy/admin sees of the Server.
type adminGateway struct{ s *Server }

func (g adminGateway) Access() *access.Access { return g.s.cur.Load().enf.acc }

func (g adminGateway) Tokens() []admin.Token { return g.s.cur.Load().enf.tokens }

func (g adminGateway) Wake(user, device string) { g.s.registry.Wake([]byte(user), []byte(device)) }

func (g adminGateway) Quarantine(user, device string) (admin.QuarantineInfo, bool) {
	rec, ok := g.s.enf.quar.Get([]byte(user), []byte(device))
	if !ok {
		return admin.QuarantineInfo{}, false
	}
	return admin.QuarantineInfo{EnteredAt: rec.EnteredAt, NoticeDelivered: rec.NoticeDelivered}, true
}

// adminGate guards a request on the admin listener and serves the API. It
// reports whether it answered; /metrics, /healthz and /readyz are served
// by AdminHandler when it did not.
func (s *Server) adminGate(ctx *fasthttp.RequestCtx) bool {
	if s.enf == nil || s.enf.api == nil {
		return false
	}
	return s.enf.api.Gate(ctx)
}

// API returns the admin API (tests and embedders call Apply directly).
func (s *Server) API() *admin.API { return s.enf.api }
