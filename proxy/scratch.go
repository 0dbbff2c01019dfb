package proxy

import (
	"sync"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/eas"
)

// exScratch is what the pipeline needs only while it inspects a request
// (inspect, and the Autodiscover authentication): the device's record for
// the policy subject and the client certificate's details. It is kept out
// of the exchange, which a held long poll keeps for its whole wait, and
// comes from a pool, so that pointing a policy.Subject or an auth.Input at
// it allocates nothing. Requests that need none of it (no enforcement, no
// client certificates) never take one.
type exScratch struct {
	info       eas.DeviceInfo // the device's last DeviceInformation (enforce.go)
	lastAction string         // the device's last action before this request (enforce.go)
	cert       certs.Identity // the verified client certificate (authn.go)
	certBuf    [128]byte
	certBytes  []byte // cert.Name as bytes for policy.Subject (in certBuf when it fits)
}

var scratchPool = sync.Pool{New: func() any { return new(exScratch) }}

// scratch returns the exchange's scratch, taking one from the pool the
// first time.
func (x *exchange) scratch() *exScratch {
	if x.sc == nil {
		x.sc = scratchPool.Get().(*exScratch)
	}
	return x.sc
}

// dropScratch puts the scratch back once the inspection is over: nothing
// may point into it afterwards.
func (x *exchange) dropScratch() {
	if sc := x.sc; sc != nil {
		x.sc = nil
		*sc = exScratch{}
		scratchPool.Put(sc)
	}
}
