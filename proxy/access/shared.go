package access

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/policy/sources"
	"github.com/easgate/easgate/policy/store"
	"github.com/easgate/easgate/policy/store/postgres"
	"github.com/easgate/easgate/proxy/config"
)

// StoreConfig turns the state section into the shared store's settings
// (the tools use it for `easgate state migrate`, explain, devices and
// report against the database).
func StoreConfig(s *config.State, readOnly bool) postgres.Config {
	return postgres.Config{URL: s.URL, PasswordFile: s.PasswordFile, ReadOnly: readOnly,
		Migrate: !readOnly && s.Schema != "check", Offline: s.OfflineStart == "snapshot", QueueLimit: s.QueueLimit}
}

// openShared opens the PostgreSQL store of state.url, with the bbolt file
// of state.path as the node's local snapshot. Its health changes are
// logged: the node keeps serving from memory while the database is down.
func openShared(cfg *config.Config, log zerolog.Logger, readOnly bool) (*postgres.Store, error) {
	pc := StoreConfig(&cfg.State, readOnly)
	if !readOnly && cfg.State.Path != "" {
		snap, err := store.Open(cfg.State.Path, false)
		if err != nil {
			return nil, fmt.Errorf("state.path (the local snapshot): %w", err)
		}
		pc.Snapshot = snap
	}
	if !readOnly {
		pc.OnHealth = func(err error) {
			if err != nil {
				log.Error().Str("error", err.Error()).
					Msg("state database unreachable: serving from memory, writes queue until it is back")
				return
			}
			log.Warn().Msg("state database reachable again: queued writes are being sent and changes caught up")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, pc)
	if err != nil {
		if errors.Is(err, postgres.ErrOldSchema) || readOnly || pc.Offline {
			return nil, err
		}
		return nil, fmt.Errorf("%w (state.offline_start: snapshot would start from the local snapshot instead)", err)
	}
	if h := st.Health(); !h.Up {
		log.Error().Str("error", h.LastError).Str("snapshot", cfg.State.Path).
			Msg("state database unreachable at start: serving from the local snapshot (state.offline_start: snapshot)")
	}
	return st, nil
}

// Shared returns the shared store (nil with the embedded file or memory).
func (a *Access) Shared() policy.SharedStore {
	s, _ := a.Store.(policy.SharedStore)
	return s
}

// graphLease is the lease under which one node pulls Microsoft Graph.
const graphLease = "graph-pull"

// shareGraph makes the Graph source pull only while this node holds the
// Graph lease, and publish each table it pulls to the shared store; the
// other nodes import it from the change feed (proxy/shared*.go). The lease
// outlives two quick syncs: a leader that stops gives it up (Close), and
// one that dies is replaced after at most that long.
func shareGraph(gc *sources.GraphConfig, ss policy.SharedStore, log zerolog.Logger) {
	quick := gc.QuickSync
	if quick <= 0 {
		quick = 5 * time.Minute
	}
	ttl := 2*quick + 30*time.Second
	var was atomic.Int32 // 0 unknown, 1 held, 2 not held: the first answer is logged too
	gc.Lease = func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ok, err := ss.TryLease(ctx, graphLease, ttl)
		if err != nil {
			log.Warn().Str("error", err.Error()).Msg("graph: the pull lease cannot be checked: not pulling (the last shared table stays in force)")
			ok = false
		}
		now := int32(2)
		if ok {
			now = 1
		}
		if was.Swap(now) != now {
			if ok {
				log.Info().Msg("graph: this node holds the pull lease and pulls Microsoft Graph for every node")
			} else {
				log.Info().Msg("graph: another node holds the pull lease; this node uses the table it publishes")
			}
		}
		return ok
	}
	gc.Release = func() {
		if was.Load() != 1 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ss.ReleaseLease(ctx, graphLease); err != nil {
			log.Warn().Str("error", err.Error()).Msg("graph: the pull lease was not released; another node takes it when it expires")
		}
	}
	gc.Publish = func(table []byte) {
		if err := ss.Update(policy.BucketCompliance, map[string][]byte{sources.GraphShareKey: table}, nil); err != nil {
			log.Warn().Err(err).Msg("graph: the pulled table was not queued for the other nodes")
		}
	}
}

// verdictStore is where the verdict cache's snapshot goes: the state
// store of one node, and with a shared database the node's local snapshot
// file. Each node's cache holds what it asked its source; rewriting the
// whole snapshot every minute from every node would only make the nodes
// overwrite each other in the database (the Graph table itself is shared,
// see shareGraph).
func (a *Access) verdictStore() policy.Store {
	if pg, ok := a.Store.(*postgres.Store); ok {
		return pg.SnapshotStore()
	}
	return a.Store
}
