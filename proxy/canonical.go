package proxy

import (
	"bytes"

	"github.com/easgate/easgate/eas"
	"github.com/valyala/fasthttp"
)

// The request the CAS executes is exactly the request easgate decided on
// (issue 12). Three rules make it so:
//
//   - checkTarget refuses a request target that easgate and IIS could
//     read differently: a path that is not already in its normal form
//     (percent-escapes, dot segments, doubled or back slashes: fasthttp
//     routes on the normalised path, IIS on its own reading of the raw one)
//     and a target with a fragment.
//   - setTarget gives the forwarded request the normalised path and a query
//     rebuilt from the parameters easgate parsed (eas.AppendQuery), so that
//     nothing easgate did not read (an unknown parameter, a deprecated
//     base64 tag) reaches the CAS.
//   - checkFraming (framing.go) refuses a second copy of any header easgate
//     reads, and stripRequestHops (headers.go) removes the headers only
//     easgate may set, in every spelling.

// errTarget is a request target easgate will not forward.
const (
	errTargetPath     = framingError("request path not in normal form (escapes, dot segments or repeated slashes)")
	errTargetFragment = framingError("fragment in the request target")
)

// checkTarget reports whether the raw request target is in the one form
// both easgate and the CAS read the same way: its path byte for byte the
// normalised path easgate routes on, and no fragment.
func checkTarget(ctx *fasthttp.RequestCtx) error {
	uri := ctx.Request.Header.RequestURI()
	if bytes.IndexByte(uri, '#') >= 0 {
		return errTargetFragment
	}
	raw := uri
	if i := bytes.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if !bytes.Equal(raw, ctx.Path()) {
		return errTargetPath
	}
	return nil
}

// setTarget points req at the normalised path and, for an EAS request
// (r non-nil), the query rebuilt from r; without r (Autodiscover, which
// reads no query, and an OPTIONS whose query could not be read) the
// request is forwarded without a query. It
// allocates nothing once the request's buffers have grown.
func setTarget(req *fasthttp.Request, path []byte, r *eas.Request) {
	uri := req.URI()
	uri.SetPathBytes(path)
	if r == nil {
		uri.SetQueryStringBytes(nil)
		return
	}
	var buf [512]byte
	uri.SetQueryStringBytes(eas.AppendQuery(buf[:0], r))
}

// errForeign is a request whose headers only easgate may set could not all
// be removed.
const errForeign = framingError("headers only easgate may set could not be removed")

// isForwardedHeader reports X-Forwarded-* and Forwarded.
func isForwardedHeader(k []byte) bool {
	return hasPrefixFold(k, "X-Forwarded-") || asciiEqualFold(k, "Forwarded")
}

// dropForeign removes the headers only easgate may set, in every spelling:
// any header whose name holds '_' (IIS maps '_' and '-' to the same server
// variable, so X_EASGate_User would be read as the identity header; nginx
// drops such names by default too), and, unless the peer is one of
// listen.trusted_proxies, every X-Forwarded-* header and Forwarded: a phone
// must not say who the client is. scanHeaders found which kinds there are;
// the common request has none and never gets here. A header that would not
// go is an error: the request is refused rather than forwarded with it.
func dropForeign(h *fasthttp.RequestHeader, foreign uint8, trusted bool) error {
	if trusted {
		foreign &^= foreignForwarded
	}
	if foreign == 0 {
		return nil
	}
	is := func(k []byte) bool {
		return foreign&foreignUnderscore != 0 && bytes.IndexByte(k, '_') >= 0 ||
			foreign&foreignForwarded != 0 && isForwardedHeader(k)
	}
	var name [256]byte
	for range h.Len() + 1 {
		n := -1
		for k := range h.All() {
			if is(k) {
				n = copy(name[:], k)
				break
			}
		}
		if n < 0 {
			return nil
		}
		h.DelBytes(name[:n])
	}
	return errForeign
}
