package auth

import (
	"fmt"
	"testing"
	"time"
)

// TestShieldOnlyRealSuccessResets: only a 2xx (or 449) answer to an
// ActiveSync command resets the counters; Autodiscover, OPTIONS and every
// other answer neither reset nor count (issue 12 item 3: a 404 to
// Autodiscover used to reset the counters).
func TestShieldOnlyRealSuccessResets(t *testing.T) {
	for _, tc := range []struct {
		route  Route
		status int
		resets bool
	}{
		{RouteEAS, 200, true},
		{RouteEAS, 204, true},
		{RouteEAS, 449, true}, // provisioning required: only after authentication
		{RouteEAS, 302, false},
		{RouteEAS, 403, false}, // IIS may answer 403 before authentication
		{RouteEAS, 404, false},
		{RouteEAS, 451, false},
		{RouteEAS, 500, false},
		{RouteEAS, 503, false},
		{RouteEAS, 0, false}, // no answer
		{RouteAutodiscover, 200, false},
		{RouteAutodiscover, 302, false},
		{RouteAutodiscover, 404, false},
		{RouteOther, 200, false}, // OPTIONS
		{RouteOther, 404, false},
	} {
		t.Run(fmt.Sprintf("route%d_%d", tc.route, tc.status), func(t *testing.T) {
			s := newShield(t, lockoutCfg(3, 0), nil, nil)
			fail(s, "jdoe", "dev1", addrA, "a", 0)
			fail(s, "jdoe", "dev1", addrA, "b", time.Second)
			s.Record(b("jdoe"), b("dev1"), addrA, b("right"), tc.route, tc.status, t0.Add(2*time.Second))
			fail(s, "jdoe", "dev1", addrA, "c", 3*time.Second)
			want := allowCase{user: "jdoe", device: "dev1", addr: addrA, pw: "right", at: 4 * time.Second, reason: ReasonLockout}
			if tc.resets {
				want.ok, want.reason = true, ""
			}
			checkAllow(t, s, []allowCase{want})

			// A neutral answer is not a failure either.
			s2 := newShield(t, userCfg(1, 1), nil, nil)
			s2.Record(b("jdoe"), b("dev1"), addrA, b("guess"), tc.route, tc.status, t0)
			checkAllow(t, s2, []allowCase{{user: "jdoe", device: "dev1", addr: addrA, pw: "guess", at: time.Second, ok: true}})
		})
	}
}
