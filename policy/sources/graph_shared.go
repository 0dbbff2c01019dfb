package sources

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/easgate/easgate/policy"
)

// GraphShareKey is the record of policy.BucketCompliance that holds the
// Graph table the leading node pulled.
const GraphShareKey = "graph"

// pull runs one sync when this node may (GraphConfig.Lease), reports it,
// and publishes the table (GraphConfig.Publish) so that the other nodes
// use it instead of pulling Graph themselves.
func (g *Graph) pull(ctx context.Context, full bool) {
	if g.cfg.Lease != nil && !g.cfg.Lease(ctx) {
		return
	}
	err := g.Sync(ctx, full)
	g.report(full, err)
	if err == nil && g.cfg.Publish != nil {
		if data, err := g.Export(); err == nil {
			g.cfg.Publish(data)
		}
	}
}

type sharedGraphTable struct {
	At      time.Time           `json:"at"`
	Devices []sharedGraphDevice `json:"devices"`
}

type sharedGraphDevice struct {
	Device   string    `json:"d"`
	UPN      string    `json:"u"`
	State    string    `json:"s"`
	Access   string    `json:"a,omitempty"`
	OS       string    `json:"o,omitempty"`
	Version  string    `json:"v,omitempty"`
	LastSync time.Time `json:"l,omitzero"`
}

// Export returns the table in force as JSON, for the shared state store.
func (g *Graph) Export() ([]byte, error) {
	t := g.table.Load()
	if t == nil {
		return nil, errors.New("graph: no table yet")
	}
	out := sharedGraphTable{At: t.at, Devices: make([]sharedGraphDevice, 0, t.entries)}
	for dev, list := range t.byDevice {
		for _, d := range list {
			out.Devices = append(out.Devices, sharedGraphDevice{Device: dev, UPN: d.upn, State: d.state.String(),
				Access: d.access, OS: d.os, Version: d.ver, LastSync: d.lastSync})
		}
	}
	return json.Marshal(&out)
}

// Import installs a table another node pulled (Export's output) and
// reports it through GraphConfig.OnSync like a full sync of its own. An
// older table than the one in force is ignored.
func (g *Graph) Import(data []byte) error {
	var in sharedGraphTable
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	if cur := g.table.Load(); cur != nil && !in.At.After(cur.at) {
		return nil
	}
	t := &graphTable{byDevice: map[string][]graphDevice{}, at: in.At}
	for _, d := range in.Devices {
		st, ok := policy.ParseState(d.State)
		if !ok || d.Device == "" {
			continue
		}
		k := strings.ToLower(d.Device)
		t.byDevice[k] = append(t.byDevice[k], graphDevice{upn: d.UPN, state: st, access: d.Access, os: d.OS, ver: d.Version, lastSync: d.LastSync})
		t.entries++
	}
	g.gmu.Lock()
	g.table.Store(t)
	g.lastSync.Store(t.at.UnixNano())
	g.gmu.Unlock()
	g.report(true, nil)
	return nil
}
