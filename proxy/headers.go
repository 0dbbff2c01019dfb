package proxy

import (
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Hop-by-hop headers (removed in both directions) and the X-Forwarded-*
// headers easgate sets for the CAS.

// hopHeaders are removed in both directions (RFC 9110 §7.6.1), as are
// Connection itself and the headers it names. Expect is removed from
// requests only (easgate answers 100-continue itself).
var hopHeaders = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Upgrade", "Transfer-Encoding", "Expect"}

const (
	hopConnection = 1 << 0
	hopExpect     = 1 << (len(hopHeaders) - 1)
)

// hopLens has bit n set when a hop-by-hop header name is n bytes long:
// most header names are of another length and need no comparison.
var hopLens = func() (m uint32) {
	for _, name := range hopHeaders {
		m |= 1 << len(name)
	}
	return m
}()

// hopBit is the bit of the hop-by-hop header named k, or 0.
func hopBit(k []byte) uint16 {
	if len(k) >= 32 || hopLens&(1<<len(k)) == 0 {
		return 0
	}
	for i, name := range hopHeaders {
		if len(k) == len(name) && asciiEqualFold(k, name) {
			return 1 << i
		}
	}
	return 0
}

// hopScan collects, during one pass over a header, which hop-by-hop
// headers it has and the Connection header's value.
type hopScan struct {
	present uint16
	conn    []byte
}

// add notes the header k: v when it is a hop-by-hop header.
func (s *hopScan) add(k, v []byte) {
	bit := hopBit(k)
	s.present |= bit
	if bit == hopConnection && s.conn == nil {
		s.conn = v
	}
}

// hopHeader is what stripHops needs of a request or response header.
type hopHeader interface {
	Del(key string)
	DelBytes(key []byte)
	ResetConnectionClose()
}

// stripHops removes the hop-by-hop headers found by one pass over the
// header (present, with conn the Connection header's value): most requests
// and answers carry none of them, so the common case costs one scan
// instead of a lookup per name.
func stripHops(h hopHeader, present uint16, conn []byte) {
	if present&hopConnection != 0 {
		forEachToken(conn, func(tok []byte) {
			if !asciiEqualFold(tok, "close") && !asciiEqualFold(tok, "keep-alive") {
				h.DelBytes(tok)
			}
		})
	}
	for i, name := range hopHeaders {
		if present&(1<<i) != 0 {
			h.Del(name)
		}
	}
	h.ResetConnectionClose()
}

// stripRequestHops removes hop-by-hop request headers and sets
// X-Forwarded-For and X-Forwarded-Proto. A client's own X-Forwarded-*
// headers are gone by now unless its peer is a trusted proxy
// (dropForeign): then the peer is appended to them.
func stripRequestHops(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	var (
		hops     hopScan
		xff, xfp []byte
	)
	for k, v := range h.All() {
		switch {
		case len(k) == len(hdrForwardedFor) && asciiEqualFold(k, hdrForwardedFor):
			xff = v
		case len(k) == len(hdrForwardedProto) && asciiEqualFold(k, hdrForwardedProto):
			xfp = v
		default:
			hops.add(k, v)
		}
	}
	// The new values are built before any header is removed: the values
	// found above alias the header's storage.
	var forBuf [512]byte
	forV := forBuf[:0]
	if len(xff) > 0 && len(xff) < len(forBuf)-64 {
		forV = append(append(forV, xff...), ", "...)
	}
	forV = appendIP(forV, ctx.RemoteIP())
	proto := "http"
	if ctx.IsTLS() {
		proto = "https"
	}
	var protoBuf [128]byte
	protoV := protoBuf[:0]
	if len(xfp) > 0 && len(xfp) < len(protoBuf)-8 {
		protoV = append(append(protoV, xfp...), ", "...)
	}
	protoV = append(protoV, proto...)
	stripHops(h, hops.present, hops.conn)
	h.SetCanonical(keyForwardedFor, forV)
	h.SetCanonical(keyForwardedProto, protoV)
}

// trustedPeer reports whether the connection comes from one of
// listen.trusted_proxies.
func (st *state) trustedPeer(ctx *fasthttp.RequestCtx) bool {
	if len(st.trusted) == 0 {
		return false
	}
	a, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range st.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

const (
	hdrForwardedFor   = "X-Forwarded-For"
	hdrForwardedProto = "X-Forwarded-Proto"
)

var (
	keyForwardedFor   = []byte(hdrForwardedFor)
	keyForwardedProto = []byte(hdrForwardedProto)
)

// appendIP appends the textual form of ip (IPv4-mapped addresses as IPv4)
// without allocating.
func appendIP(dst []byte, ip net.IP) []byte {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return dst
	}
	return a.Unmap().AppendTo(dst)
}

// stripResponseHops removes hop-by-hop headers from the CAS's answer.
func stripResponseHops(h *fasthttp.ResponseHeader) {
	var hops hopScan
	for k, v := range h.All() {
		hops.add(k, v)
	}
	stripHops(h, hops.present&^hopExpect, hops.conn)
}

func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimSpace(v[:i])
		if len(tok) > 0 {
			f(tok)
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
