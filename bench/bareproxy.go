package bench

import (
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// BareProxy is the smallest reverse proxy fasthttp makes: every request is
// passed to one upstream over kept-alive connections and the answer
// handed back, with no EAS work at all (no parsing, identification,
// policy, access log, metrics, hop-by-hop cleaning or streaming). It is the
// floor any fasthttp gateway starts from, which is what `easbench compare
// --bare` measures it for: easgate ÷ bare is the price of easgate's own
// work, bare ÷ nginx the price of Go and fasthttp against nginx's C on the
// machine at hand.
//
// Its limits follow the nginx leg's (NginxConfig): no read timeout, so a
// Ping held for an hour is not cut; request bodies up to 64 MiB; no limit
// on connections to the upstream. Answers are buffered whole, as
// fasthttp's HostClient.Do does; it is a yardstick for small requests, not
// a gateway for 50 MB downloads.
type BareProxy struct {
	srv *fasthttp.Server
	hc  *fasthttp.HostClient
}

// NewBareProxy returns a BareProxy to upstream, a host:port served over
// plain HTTP.
func NewBareProxy(upstream string) *BareProxy {
	p := &BareProxy{hc: &fasthttp.HostClient{
		Addr:                upstream,
		MaxConns:            1 << 20,
		MaxIdleConnDuration: time.Hour,
	}}
	p.srv = &fasthttp.Server{
		Handler:            p.handle,
		MaxRequestBodySize: 64 << 20,
		IdleTimeout:        time.Hour,
	}
	return p
}

func (p *BareProxy) handle(ctx *fasthttp.RequestCtx) {
	// The phone's Connection header is for this hop only; without it the
	// connection to the upstream is kept alive.
	ctx.Request.Header.Del("Connection")
	if err := p.hc.Do(&ctx.Request, &ctx.Response); err != nil {
		ctx.ResetBody()
		ctx.Error("bad gateway", fasthttp.StatusBadGateway)
	}
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (p *BareProxy) Serve(ln net.Listener) error {
	err := p.srv.Serve(ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops accepting and closes idle connections.
func (p *BareProxy) Close() error { return p.srv.Shutdown() }
