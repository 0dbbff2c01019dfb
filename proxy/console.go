package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/proxy/admin"
	"github.com/easgate/easgate/proxy/admin/console"
	"github.com/easgate/easgate/proxy/config"
)

// The web console (proxy/admin/console) on the admin listener, and the
// admin listener's TLS (admin.tls): its own certificate or the phones'
// one, and admin client certificates, which this file maps to admin
// principals for the console (the console never sees package certs).

// consoleGateway is what the console sees of the Server.
type consoleGateway struct{ adminGateway }

func (g consoleGateway) HeldLongPolls() int64 { return g.s.HeldLongPolls() }

func (g consoleGateway) Upstreams() []console.Upstream {
	st := g.s.cur.Load()
	out := make([]console.Upstream, 0, len(st.pool.Backends))
	for _, b := range st.pool.Backends {
		out = append(out, console.Upstream{Name: b.Name, Healthy: b.Available(), InFlight: b.InFlight()})
	}
	return out
}

func (g consoleGateway) SessionTimeout() time.Duration {
	return g.s.cur.Load().cfg.Admin.Console.SessionTimeout.D()
}

func (g consoleGateway) Enabled() bool { return !g.s.cur.Load().cfg.Admin.Console.Disabled }

// ClientPrincipal maps a verified admin client certificate (admin.tls
// verified its chain against admin.tls.client_cas in the handshake) to
// the admin.tls.clients entry naming its UPN, e-mail or common name.
func (g consoleGateway) ClientPrincipal(cs *tls.ConnectionState) (admin.Principal, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return admin.Principal{}, false
	}
	return certPrincipal(g.s.cur.Load().cfg.Admin.TLS.Clients, cs.PeerCertificates[0])
}

// certPrincipal finds the admin.tls.clients entry of a certificate.
func certPrincipal(clients []config.AdminClient, leaf *x509.Certificate) (admin.Principal, bool) {
	upn, email, cn, _ := certs.IdentityFromCertificate(leaf)
	for _, c := range clients {
		for _, n := range []string{upn, email, cn} {
			if n != "" && strings.EqualFold(n, c.Name) {
				role := admin.RoleRead
				switch c.Role {
				case config.RoleOperate:
					role = admin.RoleOperate
				case config.RoleAdmin:
					role = admin.RoleAdmin
				}
				return admin.Principal{Name: "cert:" + c.Name, Role: role}, true
			}
		}
	}
	return admin.Principal{}, false
}

// serveConsole answers the console's pages; it reports whether it did.
func (s *Server) serveConsole(ctx *fasthttp.RequestCtx) bool {
	return s.enf != nil && s.enf.console != nil && s.enf.console.Serve(ctx)
}

// ServeAdmin serves the admin listener (API, console, metrics) on ln
// until Shutdown: over TLS when admin.tls is set. Its own certificate is
// watched for renewal (as the phones' one is) while it serves.
func (s *Server) ServeAdmin(ln net.Listener) error {
	tc, store, err := s.adminTLSConfig(s.cur.Load().cfg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	if store != nil {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go store.Watch(ctx, 30*time.Second, func(err error) {
			s.log.Error().Err(err).Msg("admin certificate reload failed; keeping the old one")
		})
	}
	return s.admin.Serve(ln)
}

// adminTLSConfig is the admin listener's TLS configuration, or nil when
// admin.tls is off, and the store of its own certificate (nil with
// use_gateway_certificate, which serves the current state's certificates,
// reloads included). Client certificates, when admin.tls.client_cas is
// set, are asked for but optional (tokens keep working) and verified
// against those CAs.
func (s *Server) adminTLSConfig(cfg *config.Config) (*tls.Config, *certs.Store, error) {
	at := &cfg.Admin.TLS
	if !at.Enabled() {
		return nil, nil, nil
	}
	var own *certs.Store
	tc := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: certs.CipherSuites()}
	if at.UseGatewayCertificate {
		tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			st := s.cur.Load()
			if st.store == nil {
				return nil, errors.New("proxy: the gateway has no certificate (listen.plain_http)")
			}
			return st.store.GetCertificate(hello)
		}
	} else {
		var err error
		if own, err = certs.NewStore(certs.ServerConfig{Certificate: at.Certificate, Key: at.Key, MinVersion: "1.2"}); err != nil {
			return nil, nil, fmt.Errorf("proxy: admin.tls certificate: %w", err)
		}
		tc.GetCertificate = own.GetCertificate
	}
	if at.ClientCAs != "" {
		pem, err := os.ReadFile(at.ClientCAs)
		if err != nil {
			return nil, nil, fmt.Errorf("proxy: admin.tls.client_cas: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("proxy: admin.tls.client_cas: %s holds no PEM certificate", at.ClientCAs)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, own, nil
}
