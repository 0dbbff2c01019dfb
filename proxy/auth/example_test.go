package auth_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/proxy/auth"
	"github.com/easgate/easgate/proxy/config"
)

// Example shows the order the gateway applies the pieces in: Check, then
// the lockout shield, then (after forwarding) Record with the CAS status.
func Example() {
	a, _ := auth.New(config.Auth{Mode: config.AuthEither}, auth.Options{})
	shield, _ := auth.NewShield(config.Default().Auth.Lockout, auth.ShieldOptions{})
	up, _ := auth.NewUpstreamIdentity("X-EASGate-User")

	phone := netip.MustParseAddr("203.0.113.7")
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	// A phone with Basic credentials naming the EAS User.
	in := auth.Input{AuthScheme: []byte("Basic"), AuthLogin: []byte(`CORP\jdoe`), User: []byte("jdoe@corp.example.com")}
	res := a.Check(in)
	fmt.Println("check:", res.OK, res.Method)
	ok, _ := shield.Allow(in.AuthLogin, []byte("ApplDMPL69PZF18P"), phone, []byte("old-password"), now)
	fmt.Println("allow:", ok)
	// The CAS said no, twice, to the same password (a stale one).
	shield.Record(in.AuthLogin, []byte("ApplDMPL69PZF18P"), phone, []byte("old-password"), auth.RouteEAS, 401, now)
	shield.Record(in.AuthLogin, []byte("ApplDMPL69PZF18P"), phone, []byte("old-password"), auth.RouteEAS, 401, now)
	ok, why := shield.Allow(in.AuthLogin, []byte("ApplDMPL69PZF18P"), phone, []byte("old-password"), now.Add(time.Minute))
	fmt.Println("retry with the same password:", ok, why)
	ok, _ = shield.Allow(in.AuthLogin, []byte("ApplDMPL69PZF18P"), phone, []byte("new-password"), now.Add(time.Minute))
	fmt.Println("with a new password:", ok)
	fmt.Printf("upstream: %+v\n", up.Plan(in, res))

	// A certificate for someone else.
	res = a.Check(auth.Input{User: []byte("jdoe@corp.example.com"), Cert: &certs.Identity{Name: "mallory@corp.example.com"}})
	fmt.Println("check:", res.OK, res.Status, res.Reason)
	// Output:
	// check: true basic
	// allow: true
	// retry with the same password: false stale_password
	// with a new password: true
	// upstream: {KeepAuthorization:true StripHeader:X-Easgate-User IdentityValue:[]}
	// check: false 403 cert_user_mismatch
}
