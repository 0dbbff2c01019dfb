// Package access builds the gateway's access-control state from the config
// file: the policy engine, the compliance source and its verdict cache, the
// device table and the embedded state store. The gateway and `easgate
// explain` both use it, so explain runs exactly the gateway's code.
//
// It imports proxy/config, policy and its sub-packages, eas and zerolog; it
// never imports proxy (which imports it), fasthttp or bench.
package access

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/policy/sources"
	"github.com/easgate/easgate/policy/store"
	"github.com/easgate/easgate/policy/store/postgres"
	"github.com/easgate/easgate/proxy/config"
)

// Access is the access-control state of one running config.
type Access struct {
	Engine *policy.Engine
	// Rules identify mail clients as the gateway does (identify.rules_file),
	// for the tools that rebuild a decision from a stored record.
	Rules   *eas.Rules
	Cache   *policy.Cache // nil without a compliance source
	Source  policy.Source // nil without a compliance source
	Devices *policy.Devices
	Store   policy.Store // nil when state.path is empty (memory only)
	// Overrides are the administrators' per-device decisions and Audit
	// the trail of their actions; like Devices they outlive reloads.
	Overrides *policy.Overrides
	Audit     *policy.Audit

	srcCfg   config.Compliance
	log      zerolog.Logger
	readOnly bool
	owned    bool // Devices/Store were created here (not inherited)

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Options tunes Build.
type Options struct {
	// ReadOnly opens the state store without writing to it and starts no
	// background work: what `easgate explain` needs next to a running
	// gateway.
	ReadOnly bool
	// Prev, when set, is the Access of the config being replaced: its device
	// table and store are kept, and so are its source and cache when the
	// compliance source and cache settings did not change.
	Prev *Access
	// HTTPClient, when set, is the HTTP client of the http and graph
	// compliance sources (tests use it to trust a local TLS fake).
	HTTPClient *http.Client
	// GuardMetrics, when set, is told when the compliance source holds a
	// reload back and when the hold ends (the gateway's Prometheus series).
	GuardMetrics GuardMetrics
}

// GuardMetrics receives the state of the compliance reload guard
// (policy/sources.Guard). Calls come from the source's goroutine.
type GuardMetrics interface {
	// HeldBack counts a held-back reload of source ("file", "graph") for
	// reason ("empty", "unparsable", "drop"); source is held back until
	// HoldEnded.
	HeldBack(source, reason string)
	HoldEnded(source string)
}

// Build turns cfg into an Access. It reports every policy error at once.
func Build(cfg *config.Config, log zerolog.Logger, opts Options) (*Access, error) {
	pc, err := PolicyConfig(&cfg.Policy)
	if err != nil {
		return nil, err
	}
	if pc.Domains, err = Domains(&cfg.Auth); err != nil {
		return nil, err
	}
	rules, rerrs := cfg.IdentifyRules()
	if len(rerrs) > 0 {
		return nil, rerrs
	}
	a := &Access{Rules: rules, log: log, readOnly: opts.ReadOnly, srcCfg: cfg.Policy.Compliance, stop: make(chan struct{})}
	a.owned = true
	handOver := false // Prev's source and cache are reused
	if opts.Prev != nil {
		// The device table and store outlive reloads; the new Access takes
		// over flushing them.
		a.Devices, a.Store = opts.Prev.Devices, opts.Prev.Store
		a.Overrides, a.Audit = opts.Prev.Overrides, opts.Prev.Audit
	} else {
		if cfg.State.URL != "" {
			st, err := openShared(cfg, log, opts.ReadOnly) // shared.go
			if err != nil {
				return nil, err
			}
			a.Store = st
		} else if _, err := os.Stat(cfg.State.Path); cfg.State.Path != "" && opts.ReadOnly && err != nil {
			// Nothing recorded yet (the gateway never ran with this
			// state.path): explain works from the config alone.
			log.Warn().Str("path", cfg.State.Path).Msg("state store not found: no device history")
		} else if cfg.State.Path != "" {
			st, err := store.Open(cfg.State.Path, opts.ReadOnly)
			if err != nil {
				return nil, err
			}
			a.Store = st
		}
		a.Devices = policy.NewDevices(a.Store)
		a.Overrides = policy.NewOverrides(a.Store)
		if !opts.ReadOnly {
			if host, err := os.Hostname(); err == nil {
				a.Devices.SetNode(host)
			}
			if err := a.Devices.LoadCanonical(pc.Domains.Canonical); err != nil {
				log.Warn().Err(err).Msg("state store: some device records were skipped")
			}
		}
		// Overrides decide, so explain (read-only) loads them too.
		if err := a.Overrides.LoadCanonical(pc.Domains.Canonical); err != nil {
			log.Warn().Err(err).Msg("state store: some admin overrides were skipped")
		}
		if a.Audit, err = policy.NewAudit(a.Store); err != nil {
			return nil, fmt.Errorf("state store: audit trail: %w", err)
		}
		if pg, ok := a.Store.(*postgres.Store); ok {
			a.Audit.SetNode(pg.Origin())
		}
	}
	pc.Overrides = a.Overrides
	if src := cfg.Policy.Compliance.Source; src.Type != "" {
		if p := opts.Prev; p != nil && p.Cache != nil && reflect.DeepEqual(p.srcCfg.Source, src) && reflect.DeepEqual(p.srcCfg.Cache, cfg.Policy.Compliance.Cache) {
			a.Source, a.Cache = p.Source, p.Cache
			handOver = true
		} else {
			// The source may call purge from its own goroutine as soon as it
			// exists; the cache it purges is created just below.
			var cacheRef atomic.Pointer[policy.Cache]
			purge := func() {
				if c := cacheRef.Load(); c != nil {
					c.Purge()
				}
			}
			guard := guardFor(cfg, log, opts)
			if f, ok := prevSource(opts).(*sources.File); ok && opts.Prev.srcCfg.Source.Path == src.Path {
				// A changed source or cache setting builds a new source: its
				// first load must not slip a held-back file past the guard.
				guard.Baseline = f.Len()
			}
			s, err := newSource(src, log, opts.ReadOnly, opts.HTTPClient, purge, guard, a.Shared())
			if err != nil {
				return nil, err
			}
			cc := cfg.Policy.Compliance.Cache
			c, err := policy.NewCache(s, policy.CacheConfig{
				TTL: cc.TTL.D(), NegativeTTL: cc.NegativeTTL.D(), StaleIfError: cc.StaleIfError.D(),
				LookupTimeout: cc.LookupTimeout.D(), RefreshBefore: cc.RefreshBefore.D(), MaxEntries: cc.MaxEntries,
			})
			if err != nil {
				return nil, err
			}
			cacheRef.Store(c)
			a.Source, a.Cache = s, c
			// A compliance file is read whole at start: a snapshot of
			// verdicts taken from an older file would only be wrong.
			if vs := a.verdictStore(); vs != nil && src.Type != config.SourceFile {
				n, err := c.LoadSnapshot(vs)
				if err != nil {
					log.Warn().Err(err).Msg("state store: verdict snapshot not loaded")
				} else if n > 0 {
					log.Info().Int("verdicts", n).Msg("verdict cache restored from the state store")
				}
			}
		}
	}
	eng, err := policy.NewEngine(pc, a.Cache)
	if err != nil {
		if a.Source != nil && !handOver {
			if c, ok := a.Source.(policy.Closer); ok {
				_ = c.Close()
			}
		}
		return nil, err
	}
	a.Engine = eng
	// Take over from Prev only now that nothing can fail: a failed reload
	// leaves the running Access as it was.
	if p := opts.Prev; p != nil {
		p.owned = false
		if handOver {
			p.Source, p.Cache = nil, nil // handed over: the old Access must not close them
		}
	}
	return a, nil
}

// Domains builds auth.domains: the canonical user names that the policy,
// the authentication and every per-device table share.
func Domains(a *config.Auth) (*eas.Domains, error) {
	d, err := eas.NewDomains(a.Domains, a.NetBIOSDomains)
	if err != nil {
		return nil, fmt.Errorf("auth.domains: %w", err)
	}
	return d, nil
}

// PolicyConfig converts the config file's policy section.
func PolicyConfig(p *config.Policy) (policy.Config, error) {
	var errs []error
	action := func(where, s string, def policy.Action) policy.Action {
		if s == "" {
			return def
		}
		a, ok := policy.ParseAction(s)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown access %q", where, s))
		}
		return a
	}
	mode, ok := policy.ParseMode(p.Mode)
	if !ok {
		errs = append(errs, fmt.Errorf("policy.mode: unknown mode %q", p.Mode))
	}
	pc := policy.Config{
		Mode:            mode,
		DefaultAccess:   action("policy.default_access", p.DefaultAccess, policy.Allow),
		DiscoveryPeriod: p.DiscoveryPeriod.D(),
		Groups:          p.Groups,
		Users:           map[string]policy.UserLists{},
		Compliance: policy.ComplianceConfig{
			RequireFor:    p.Compliance.RequireFor,
			Exclude:       p.Compliance.Exclude,
			OnUnavailable: action("policy.compliance.cache.on_unavailable", p.Compliance.Cache.OnUnavailable, policy.Quarantine),
		},
	}
	for u, l := range p.Users {
		pc.Users[u] = policy.UserLists{AllowedDevices: l.AllowedDevices, BlockedDevices: l.BlockedDevices}
	}
	for i, r := range p.Rules {
		rm, ok := policy.ParseMode(r.Mode)
		if !ok {
			errs = append(errs, fmt.Errorf("policy.rules[%d].mode: unknown mode %q", i, r.Mode))
		}
		if r.Mode == "" {
			rm = policy.Enforce // the policy's own mode applies on top
		}
		m := r.Match
		osFamily := ""
		if len(m.OSFamily) > 1 {
			errs = append(errs, fmt.Errorf("policy.rules[%d].match.os_family: one OS family per rule", i))
		} else if len(m.OSFamily) == 1 {
			osFamily = m.OSFamily[0]
		}
		pc.Rules = append(pc.Rules, policy.Rule{
			Name:   r.Name,
			Access: action(fmt.Sprintf("policy.rules[%d].access", i), r.Access, policy.Allow),
			Mode:   rm,
			Match: policy.Match{
				DeviceType: m.DeviceType, DeviceModel: m.DeviceModel, DeviceOS: m.DeviceOS, UserAgent: m.UserAgent,
				Client: m.Client, OSFamily: osFamily, OSVersionBelow: m.OSVersionBelow,
				Users: m.Users, Groups: m.Groups, AuthMethod: m.AuthMethod, Regex: m.Regex,
			},
		})
	}
	if len(p.Compliance.RequireFor) > 0 && p.Compliance.Source.Type == "" {
		errs = append(errs, errors.New("policy.compliance.require_for needs policy.compliance.source"))
	}
	return pc, errors.Join(errs...)
}

func readSecret(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func prevSource(opts Options) policy.Source {
	if opts.Prev == nil {
		return nil
	}
	return opts.Prev.Source
}

// guardFor configures the reload guard of the file and graph sources: the
// threshold, the accept marker and status files (none for a read-only
// Access: explain neither consumes markers nor writes status), and the
// log lines and metrics of holds.
func guardFor(cfg *config.Config, log zerolog.Logger, opts Options) sources.Guard {
	src := cfg.Policy.Compliance.Source
	g := sources.Guard{MaxDrop: src.MaxDrop.Fraction()}
	if !opts.ReadOnly {
		g.AcceptPath, g.StatusPath = sources.GuardPaths(src.Type, src.Path, cfg.State.Path, cfg.Source)
	}
	m := opts.GuardMetrics
	g.OnEvent = func(ev sources.GuardEvent) {
		switch {
		case ev.StatusErr != nil:
			log.Warn().Err(ev.StatusErr).Str("source", ev.Source).
				Msg("compliance status file not written: easgate compliance status cannot see this gateway")
		case ev.Held != nil:
			h := ev.Held
			log.Error().Str("source", h.Source).Str("path", h.Path).Str("reason", string(h.Reason)).
				Int("old_entries", h.Old).Int("new_entries", h.New).
				Float64("drop_percent", math.Round(h.DropPercent*10)/10).Float64("max_drop_percent", h.MaxDrop).
				Str("sha256", h.SHA256).Str("detail", h.Detail).Str("accept_marker", g.AcceptPath).
				Msg("compliance reload held back: the last good table stays in force; if the new content is right, run easgate compliance accept")
			if m != nil {
				m.HeldBack(h.Source, string(h.Reason))
			}
		case ev.EndedBy != "":
			e := log.Info()
			msg := "compliance reload guard: the hold ended"
			if ev.EndedBy == sources.EndedByAcceptFile || ev.EndedBy == sources.EndedByMarkerLine {
				e, msg = log.Warn(), "compliance reload accepted by an administrator"
			}
			e.Str("source", ev.Source).Str("ended_by", ev.EndedBy).Int("entries", ev.Entries).Msg(msg)
			if m != nil {
				m.HoldEnded(ev.Source)
			}
		}
	}
	return g
}

// newSource builds the compliance source. purge is called when a source
// that keeps its whole table locally (file, graph) has loaded a changed
// table: the cache in front of it must forget verdicts from the old one.
// A reload the guard holds back changes nothing, so it purges nothing and
// held requests keep their decisions.
func newSource(s config.Source, log zerolog.Logger, readOnly bool, client *http.Client, purge func(), guard sources.Guard, shared policy.SharedStore) (policy.Source, error) {
	switch s.Type {
	case config.SourceFile:
		f, err := sources.NewFileGuarded(s.Path, guard)
		if f == nil {
			return nil, err
		}
		if err != nil {
			log.Warn().Err(err).Str("path", s.Path).Msg("compliance file: malformed lines skipped")
		}
		if !readOnly {
			f.Watch(2*time.Second, func(changed bool, err error) {
				var held *sources.HeldBack
				if errors.As(err, &held) {
					return // logged once per content by the guard
				}
				ev := log.Info()
				if err != nil {
					ev = log.Warn().Err(err)
				}
				if changed {
					purge() // the file is the whole truth: drop what was cached from the old one
				}
				ev.Bool("changed", changed).Int("rows", f.Len()).Str("path", s.Path).Msg("compliance file reloaded")
			})
		}
		return f, nil
	case config.SourceHTTP:
		hc := sources.HTTPConfig{URL: s.URL, Timeout: s.Timeout.D(), Retries: s.Retries, Client: client}
		if s.TokenFile != "" {
			tok, err := readSecret(s.TokenFile, "policy.compliance.source.token_file")
			if err != nil {
				return nil, err
			}
			hc.Token = tok
		}
		if s.ClientCertificate != "" {
			cert, err := tls.LoadX509KeyPair(s.ClientCertificate, s.ClientKey)
			if err != nil {
				return nil, fmt.Errorf("policy.compliance.source.client_certificate: %w", err)
			}
			hc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		return sources.NewHTTP(hc)
	case config.SourceGraph:
		gc := sources.GraphConfig{TenantID: s.TenantID, ClientID: s.ClientID, AuthorityURL: s.AuthorityURL, GraphURL: s.GraphURL,
			FullSync: s.FullSync.D(), QuickSync: s.QuickSync.D(), Timeout: s.Timeout.D(), Client: client,
			Guard: guard,
			OnSync: func(full bool, n int, err error) {
				var held *sources.HeldBack
				if errors.As(err, &held) {
					return // logged once per pull by the guard; nothing changed
				}
				if err != nil {
					log.Warn().Err(err).Bool("full", full).Msg("graph: sync failed")
					return
				}
				purge()
				log.Info().Bool("full", full).Int("devices", n).Msg("graph: synced")
			}}
		if s.ClientSecretFile != "" {
			sec, err := readSecret(s.ClientSecretFile, "policy.compliance.source.client_secret_file")
			if err != nil {
				return nil, err
			}
			gc.ClientSecret = sec
		} else {
			cert, key, err := loadRSAPair(s.ClientCertificate, s.ClientKey)
			if err != nil {
				return nil, err
			}
			gc.Certificate, gc.Key = cert, key
		}
		if shared != nil && !readOnly {
			shareGraph(&gc, shared, log) // shared.go: one node pulls, under a lease
		}
		g, err := sources.NewGraph(gc)
		if err != nil {
			return nil, err
		}
		if !readOnly {
			g.Start()
		}
		return g, nil
	}
	return nil, fmt.Errorf("policy.compliance.source.type: unknown type %q", s.Type)
}

func loadRSAPair(certFile, keyFile string) (*x509.Certificate, *rsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("policy.compliance.source.client_certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("policy.compliance.source.client_certificate: %w", err)
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("policy.compliance.source.client_key: Microsoft Graph certificate credentials need an RSA key")
	}
	return cert, key, nil
}

// Run starts the background work: flushing the device table every second
// and saving the verdict snapshot every minute. Stop with Close.
func (a *Access) Run() {
	if a.readOnly || !a.owned {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		flush := time.NewTicker(time.Second)
		snap := time.NewTicker(time.Minute)
		defer flush.Stop()
		defer snap.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-flush.C:
				if err := a.Devices.Flush(); err != nil {
					a.log.Warn().Err(err).Msg("state store: device flush failed; will retry")
				}
			case <-snap.C:
				a.saveSnapshot()
			}
		}
	}()
}

func (a *Access) saveSnapshot() {
	if vs := a.verdictStore(); vs != nil && a.Cache != nil {
		if err := a.Cache.SaveSnapshot(vs); err != nil {
			a.log.Warn().Err(err).Msg("state store: verdict snapshot not saved")
		}
	}
}

// Close stops background work, flushes state and closes the source. Parts
// handed over to a newer Access (Options.Prev) are left running.
func (a *Access) Close() error {
	a.once.Do(func() { close(a.stop) })
	a.wg.Wait()
	var errs []error
	if a.owned && !a.readOnly {
		errs = append(errs, a.Devices.Flush())
		a.saveSnapshot()
	}
	if c, ok := a.Source.(policy.Closer); ok {
		errs = append(errs, c.Close())
	}
	if a.owned && a.Store != nil {
		errs = append(errs, a.Store.Close()) // a shared store sends what it queued
	}
	return errors.Join(errs...)
}

// Explain runs the engine for a subject, as the gateway would.
func (a *Access) Explain(ctx context.Context, s *policy.Subject) (policy.Decision, []policy.Step) {
	return a.Engine.Explain(ctx, s)
}
