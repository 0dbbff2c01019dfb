package sources

import (
	"context"
	"testing"

	"github.com/easgate/easgate/policy"
)

// A table one node pulled and exported answers the same lookups on another
// node that imports it; an older table does not replace a newer one.
func TestGraphExportImport(t *testing.T) {
	g := newFakeGraph(t)
	g.devices = []graphManagedDevice{
		dev("alice@corp.example.com", "ApplAAA", "compliant", "2026-11-27T09:00:00Z"),
		dev("bob@corp.example.com", "ApplBBB", "noncompliant", "2026-11-27T09:00:00Z"),
	}
	leader, _ := NewGraph(GraphConfig{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "shh", AuthorityURL: g.srv.URL, GraphURL: g.srv.URL})
	if err := leader.Sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	data, err := leader.Export()
	if err != nil {
		t.Fatal(err)
	}
	synced := 0
	follower, _ := NewGraph(GraphConfig{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "other", OnSync: func(bool, int, error) { synced++ }})
	if err := follower.Import(data); err != nil {
		t.Fatal(err)
	}
	for _, q := range []policy.Query{{User: "alice@corp.example.com", DeviceID: "applaaa"}, {User: "bob@corp.example.com", DeviceID: "ApplBBB"}, {User: "carol", DeviceID: "x"}} {
		want, _ := leader.Lookup(context.Background(), q)
		got, err := follower.Lookup(context.Background(), q)
		if err != nil || got.State != want.State {
			t.Fatalf("%+v: follower %v (%v), leader %v", q, got.State, err, want.State)
		}
	}
	if synced != 1 {
		t.Fatalf("OnSync called %d times on import, want 1", synced)
	}
	if err := follower.Import([]byte(`{"at":"2000-01-01T00:00:00Z","devices":[]}`)); err != nil {
		t.Fatal(err)
	}
	if v, _ := follower.Lookup(context.Background(), policy.Query{User: "alice@corp.example.com", DeviceID: "ApplAAA"}); v.State != policy.StateCompliant {
		t.Fatal("an older table replaced the newer one")
	}
}

// FuzzGraphImport: a table from the shared store never panics the source.
// Seeded from a real export.
func FuzzGraphImport(f *testing.F) {
	f.Add([]byte(`{"at":"2026-11-27T09:00:00Z","devices":[{"d":"applaaa","u":"alice@corp.example.com","s":"compliant","a":"allowed","o":"iOS","v":"17.5","l":"2026-11-27T09:00:00Z"}]}`))
	f.Add([]byte(`{"at":"2026-11-27T09:00:00Z","devices":[{"d":"","u":"","s":"bogus"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, _ := NewGraph(GraphConfig{TenantID: "t", ClientID: "c", ClientSecret: "s"})
		if err := g.Import(data); err != nil {
			return
		}
		if _, err := g.Export(); err != nil && g.table.Load() != nil {
			t.Fatalf("an imported table does not export: %v", err)
		}
		_, _ = g.Lookup(context.Background(), policy.Query{User: "alice@corp.example.com", DeviceID: "ApplAAA"})
	})
}
