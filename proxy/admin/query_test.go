package admin

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
)

// TestApplyAll: the console's multi-select is all or nothing, goes
// through the same commit as the API (audit entries marked bulk, held
// requests woken) and refuses what Apply refuses.
func TestApplyAll(t *testing.T) {
	g := newFakeGateway(t)
	api := New(g, zerolog.Nop())
	const u = "jdoe@corp.example.com"
	for _, id := range []string{"A1", "B2", "C3"} {
		seen(g, u, id, eas.DeviceInfo{Model: "iPhone15C2"}, policy.Quarantine)
	}
	op := Principal{Name: "helpdesk", Role: RoleOperate}
	refs := func(ids ...string) []DeviceRef {
		var out []DeviceRef
		for _, id := range ids {
			out = append(out, DeviceRef{User: `CORP\jdoe`, DeviceID: id})
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		p      Principal
		action string
		note   string
		devs   []DeviceRef
		status int
		want   string
	}{
		{"read role", Principal{Name: "grafana", Role: RoleRead}, ActBlock, "", refs("A1"), 403, "actions need operate"},
		{"unknown action", op, "explode", "", refs("A1"), 404, "unknown action"},
		{"nothing selected", op, ActBlock, "", nil, 400, "select at least one"},
		{"long note", op, ActBlock, strings.Repeat("x", maxNote+1), refs("A1"), 400, "note is"},
		{"one unknown device", op, ActBlock, "", refs("A1", "NOPE"), 404, `no device "NOPE"`},
		{"bad device id", op, ActBlock, "", refs(strings.Repeat("x", eas.MaxDeviceIDLen+1)), 400, "device id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.ApplyAll(tc.p, tc.action, tc.note, tc.devs)
			if err == nil || ErrorStatus(err) != tc.status || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (status %d), want %d %q", err, ErrorStatus(err), tc.status, tc.want)
			}
		})
	}
	if g.acc.Overrides.Len() != 0 || len(g.woken) != 0 {
		t.Fatalf("a refused action changed something: %d overrides, woken %v", g.acc.Overrides.Len(), g.woken)
	}
	es, err := api.ApplyAll(op, ActBlock, "lost", refs("a1", "C3", "A1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || !es[0].Bulk || es[0].After != "blocked (override block)" || es[1].DeviceID != "C3" || es[1].Note != "lost" {
		t.Fatalf("entries %+v", es)
	}
	if len(g.woken) != 2 {
		t.Fatalf("woken %v", g.woken)
	}
	one, err := api.ApplyAll(op, ActAllow, "", refs("B2"))
	if err != nil || len(one) != 1 || one[0].Bulk {
		t.Fatalf("a single device is not a bulk action: %+v %v", one, err)
	}
}

func TestAuthenticate(t *testing.T) {
	toks := []Token{{Name: "grafana", Role: RoleRead, secret: []byte("r-1")}, {Name: "helpdesk", Role: RoleOperate, secret: []byte("o-2")}}
	for _, tc := range []struct {
		secret string
		want   string
		ok     bool
	}{{"o-2", "helpdesk", true}, {"r-1", "grafana", true}, {"", "", false}, {"o-", "", false}, {"o-2 ", "", false}} {
		p, ok := Authenticate(toks, []byte(tc.secret))
		if ok != tc.ok || p.Name != tc.want {
			t.Errorf("Authenticate(%q) = %v %v", tc.secret, p, ok)
		}
	}
	if _, ok := Authenticate(nil, []byte("o-2")); ok {
		t.Error("no tokens authenticated a secret")
	}
}
