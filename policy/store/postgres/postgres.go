// Package postgres is easgate's shared state store: several easgate nodes
// behind one load balancer keep their devices, admin overrides, audit
// trail, quarantine records, lockout counters and compliance verdicts in
// one PostgreSQL database. It implements policy.Store, like the embedded
// bbolt file (policy/store), plus a change feed and leases.
//
// The shape is Pomerium's storage backend (pkg/storage/postgres): every
// record carries a version from one sequence; a writer takes an advisory
// lock before it draws versions, so versions commit in order; after each
// write it sends a NOTIFY without payload. The NOTIFY only wakes the other
// nodes, which then ask for every record above the last version they saw.
// A missed notification therefore costs a delay (the feed also polls), not
// a lost change. Deletes keep a tombstone row so that catch-up sees them.
//
// Nothing here runs on a phone's request path. Update queues the records
// (merged per key, bounded by Config.QueueLimit) and returns at once; one
// writer goroutine sends them in batches and keeps them while the database
// is down. Readers of the feed apply remote changes to their node's
// in-memory tables. A node that cannot reach the database keeps serving
// from memory; with Config.Snapshot every change is mirrored into a local
// bbolt file so that a node starting while the database is down can load
// its last state (Config.Offline).
//
// Why jackc/pgx v5: it is the maintained pure-Go PostgreSQL driver, with a
// connection pool (pgxpool), LISTEN/NOTIFY on a plain connection
// (pgconn WaitForNotification), the standard PG* environment and
// sslmode/sslrootcert handling of libpq, and no cgo.
//
// It imports policy (for the Store interface), pgx and the standard
// library; never proxy, proxy/config, certs or fasthttp: the gateway hands
// it values, not the config file.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/easgate/easgate/policy"
)

// Channel is the NOTIFY channel that wakes the change feed.
const Channel = "easgate_changes"

// writeLock is the advisory lock writers take before drawing versions.
const writeLock = 0x6561_7367_7772 // "easgwr"

// maxBatch bounds the records of one write transaction.
const maxBatch = 20_000

// snapshotMeta is the snapshot bucket that remembers the last version the
// snapshot holds.
const snapshotMeta = "_easgate_shared"

// Config configures a Store.
type Config struct {
	// URL is the libpq connection URL or key=value string (postgres://…);
	// unset parts come from the standard PG* environment variables
	// (PGHOST, PGUSER, PGPASSWORD, PGPASSFILE, PGSSLMODE, PGSSLROOTCERT…).
	URL string
	// PasswordFile, when set, holds the password (first line).
	PasswordFile string
	// Migrate applies missing schema migrations at Open; without it an
	// older schema is an error that names `easgate state migrate`.
	Migrate bool
	// ReadOnly opens for the tools (explain, devices, report): no writer,
	// no feed, Update fails.
	ReadOnly bool
	// Snapshot, when set, is a local store that mirrors every record
	// (the node's last state), read when the database is down.
	Snapshot policy.Store
	// Offline lets Open succeed while the database is unreachable: reads
	// come from Snapshot and writes queue until it comes back.
	Offline bool
	// QueueLimit bounds the records waiting to be written (default
	// 200,000); Update returns ErrQueueFull beyond it, and its caller
	// keeps the records dirty for a later attempt.
	QueueLimit int
	// ConnectTimeout bounds each connection attempt (default 5 s).
	ConnectTimeout time.Duration
	// OnHealth, when set, is called from a background goroutine when the
	// database becomes reachable (err nil) or unreachable.
	OnHealth func(err error)
}

// ErrQueueFull says the write queue is at Config.QueueLimit.
var ErrQueueFull = errors.New("state database: write queue full")

// Store is a policy.Store in PostgreSQL with a change feed.
type Store struct {
	cfg    Config
	pc     *pgx.ConnConfig
	pool   *pgxpool.Pool
	origin string // this process: its own changes are not fed back to it

	mu      sync.Mutex
	pending map[recKey][]byte // nil value: delete
	sending int               // records of the batch being written
	wake    chan struct{}
	drained *sync.Cond // signalled after each write attempt

	subMu sync.RWMutex
	subs  map[string][]func(key string, value []byte)

	version atomic.Int64 // the last version the feed applied
	up      atomic.Bool
	errMu   sync.Mutex
	lastErr error
	writes  atomic.Uint64 // records written
	applied atomic.Uint64 // remote records applied

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  sync.Once
}

type recKey struct{ bucket, key string }

// Open connects to the database, checks (or, with Migrate, applies) the
// schema and returns the store. Call Subscribe for the buckets this node
// mirrors, then Start.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pc, err := cfg.connConfig()
	if err != nil {
		return nil, err
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 200_000
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	pc.ConnectTimeout = cfg.ConnectTimeout
	var id [6]byte
	_, _ = rand.Read(id[:])
	host, _ := os.Hostname()
	s := &Store{cfg: cfg, pc: pc, origin: host + "-" + hex.EncodeToString(id[:]),
		pending: map[recKey][]byte{}, wake: make(chan struct{}, 1), subs: map[string][]func(string, []byte){}}
	s.drained = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(context.Background())

	pcfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	pcfg.ConnConfig = pc
	pcfg.MaxConns = 4
	pcfg.MinConns = 0
	if s.pool, err = pgxpool.NewWithConfig(s.ctx, pcfg); err != nil {
		return nil, cfg.connError(err)
	}
	if err := s.check(ctx); err != nil {
		if !cfg.Offline || cfg.Snapshot == nil || !isUnreachable(err) {
			s.pool.Close()
			return nil, err
		}
		// Serve from the last local snapshot; the feed catches up from the
		// version it holds once the database is back.
		s.lastErr = err
		if v, ok, _ := cfg.Snapshot.Get(snapshotMeta, "version"); ok {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			s.version.Store(n)
		}
		return s, nil
	}
	s.up.Store(true)
	return s, nil
}

// check connects, checks the schema and reads the current version.
func (s *Store) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout+5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.pc)
	if err != nil {
		return s.cfg.connError(err)
	}
	defer conn.Close(context.Background())
	if s.cfg.Migrate && !s.cfg.ReadOnly {
		if _, _, err := migrate(ctx, conn, 0); err != nil {
			return err
		}
	}
	v, err := schemaVersion(ctx, conn)
	if err != nil {
		return fmt.Errorf("state database: reading the schema version: %s", s.cfg.scrub(err.Error()))
	}
	switch {
	case v < SchemaVersion:
		return fmt.Errorf("%w: it has schema version %d, this easgate needs %d: run `easgate state migrate` (or start with state.migrate: true)", ErrOldSchema, v, SchemaVersion)
	case v > SchemaVersion:
		return fmt.Errorf("state database: schema version %d is newer than this easgate's (%d): upgrade easgate", v, SchemaVersion)
	}
	var last int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM easgate_records`).Scan(&last); err != nil {
		return fmt.Errorf("state database: %s", s.cfg.scrub(err.Error()))
	}
	s.version.Store(last)
	return nil
}

// isUnreachable reports whether err means the server could not be reached
// (as opposed to a refusal: wrong password, missing database, old schema).
func isUnreachable(err error) bool {
	var ce *connErr
	return errors.As(err, &ce) && ce.unreachable
}

// Origin names this process in the change table.
func (s *Store) Origin() string { return s.origin }

// Subscribe calls fn, from the feed goroutine and in version order, for
// every change to bucket made by another node: value is nil for a delete.
// The slices are fn's to keep. Subscribe before Start.
func (s *Store) Subscribe(bucket string, fn func(key string, value []byte)) {
	s.subMu.Lock()
	s.subs[bucket] = append(s.subs[bucket], fn)
	s.subMu.Unlock()
}

// Start runs the writer and the change feed. A read-only store starts
// nothing.
func (s *Store) Start() {
	if s.cfg.ReadOnly {
		return
	}
	s.start.Do(func() {
		s.wg.Add(2)
		go s.writer()
		go s.feed()
	})
}

// Update implements policy.Store: it queues the records and returns at
// once (ErrQueueFull beyond Config.QueueLimit).
func (s *Store) Update(bucket string, puts map[string][]byte, deletes []string) error {
	if s.cfg.ReadOnly {
		return errors.New("state database: opened read-only")
	}
	if len(puts) == 0 && len(deletes) == 0 {
		return nil
	}
	s.mu.Lock()
	add := 0
	for k := range puts {
		if _, ok := s.pending[recKey{bucket, k}]; !ok {
			add++
		}
	}
	for _, k := range deletes {
		if _, ok := s.pending[recKey{bucket, k}]; !ok {
			add++
		}
	}
	if len(s.pending)+s.sending+add > s.cfg.QueueLimit {
		s.mu.Unlock()
		return ErrQueueFull
	}
	for k, v := range puts {
		s.pending[recKey{bucket, k}] = append(make([]byte, 0, len(v)), v...) // non-nil
	}
	for _, k := range deletes {
		s.pending[recKey{bucket, k}] = nil
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Sync waits until everything queued before the call is written, or ctx
// ends.
func (s *Store) Sync(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.mu.Lock()
		for len(s.pending)+s.sending > 0 && ctx.Err() == nil && s.ctx.Err() == nil {
			s.drained.Wait()
		}
		s.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		if n := s.Pending(); n > 0 {
			return fmt.Errorf("state database: %d records not written: %w", n, s.Err())
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		s.drained.Broadcast()
		s.mu.Unlock()
		return fmt.Errorf("state database: %d records still queued: %w", s.Pending(), ctx.Err())
	}
}

// Pending returns the number of records waiting to be written.
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) + s.sending
}

// Up reports whether the last database operation succeeded.
func (s *Store) Up() bool { return s.up.Load() }

// Err returns the last database error (nil while up).
func (s *Store) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.lastErr
}

func (s *Store) setHealth(err error) {
	if err != nil {
		err = errors.New(s.cfg.scrub(err.Error()))
	}
	s.errMu.Lock()
	was := s.up.Load()
	s.lastErr = err
	s.up.Store(err == nil)
	s.errMu.Unlock()
	if (err == nil) != was && s.cfg.OnHealth != nil {
		s.cfg.OnHealth(err)
	}
}

// writer sends the queued records, merged per key, in one transaction per
// batch; on failure they go back into the queue (behind newer values) and
// the writer retries with a growing pause.
func (s *Store) writer() {
	defer s.wg.Done()
	backoff := 250 * time.Millisecond
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-tick.C:
		}
		for {
			s.mu.Lock()
			batch := s.pending
			if len(batch) > maxBatch {
				// A backlog (after an outage) goes in several transactions,
				// each well within the write timeout.
				batch = make(map[recKey][]byte, maxBatch)
				for k, v := range s.pending {
					batch[k] = v
					delete(s.pending, k)
					if len(batch) == maxBatch {
						break
					}
				}
			} else {
				s.pending = map[recKey][]byte{}
			}
			s.sending = len(batch)
			s.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			s.mirror(batch, 0)
			err := s.write(batch)
			s.mu.Lock()
			if err != nil {
				for k, v := range batch {
					if _, newer := s.pending[k]; !newer {
						s.pending[k] = v
					}
				}
			}
			s.sending = 0
			s.drained.Broadcast()
			s.mu.Unlock()
			if err != nil {
				s.setHealth(err)
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 250 * time.Millisecond
			s.setHealth(nil)
		}
	}
}

// write sends one batch: under the write lock so that versions commit in
// order, then NOTIFY (delivered at commit).
func (s *Store) write(batch map[recKey][]byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	buckets := make([]string, 0, len(batch))
	keys := make([][]byte, 0, len(batch))
	values := make([][]byte, 0, len(batch))
	for k, v := range batch {
		buckets = append(buckets, k.bucket)
		keys = append(keys, []byte(k.key))
		values = append(values, v)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(writeLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO easgate_records (bucket, key, value, version, origin, modified)
			SELECT b, k, v, nextval('easgate_version'), $4, now() FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS t(b, k, v)
			ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, version = excluded.version,
				origin = excluded.origin, modified = excluded.modified`, buckets, keys, values, s.origin); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, Channel)
		return err
	})
	if err != nil {
		return fmt.Errorf("state database: write: %w", s.cfg.wrap(err))
	}
	s.writes.Add(uint64(len(batch)))
	return nil
}

// mirror copies records into the local snapshot, with the version they
// bring it to (0: unchanged).
func (s *Store) mirror(batch map[recKey][]byte, version int64) {
	snap := s.cfg.Snapshot
	if snap == nil {
		return
	}
	type change struct {
		puts map[string][]byte
		dels []string
	}
	by := map[string]*change{}
	for k, v := range batch {
		c := by[k.bucket]
		if c == nil {
			c = &change{puts: map[string][]byte{}}
			by[k.bucket] = c
		}
		if v == nil {
			c.dels = append(c.dels, k.key)
		} else {
			c.puts[k.key] = v
		}
	}
	for b, c := range by {
		_ = snap.Update(b, c.puts, c.dels) // a snapshot is best effort: the database is the truth
	}
	if version > 0 {
		_ = snap.Update(snapshotMeta, map[string][]byte{"version": []byte(strconv.FormatInt(version, 10))}, nil)
	}
}

// feed listens for the wake-up and applies every record above the last
// version seen. It reconnects with a growing pause while the database is
// down; polling every few seconds covers a notification lost in between.
func (s *Store) feed() {
	defer s.wg.Done()
	backoff := 250 * time.Millisecond
	for s.ctx.Err() == nil {
		err := s.listen()
		if s.ctx.Err() != nil {
			return
		}
		s.setHealth(err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) listen() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ConnectTimeout)
	conn, err := pgx.ConnectConfig(ctx, s.pc)
	cancel()
	if err != nil {
		return s.cfg.connError(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(s.ctx, `LISTEN `+Channel); err != nil {
		return s.cfg.wrap(err)
	}
	for {
		if err := s.catchUp(conn); err != nil {
			return err
		}
		s.setHealth(nil)
		wctx, cancel := context.WithTimeout(s.ctx, 3*time.Second)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if s.ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("state database: change feed: %w", s.cfg.wrap(err))
		}
	}
}

// catchUp applies the records above the last version seen, in version
// order, in pages.
func (s *Store) catchUp(conn *pgx.Conn) error {
	const page = 5000
	for {
		from := s.version.Load()
		rows, err := conn.Query(s.ctx, `SELECT bucket, key, value, version, origin FROM easgate_records
			WHERE version > $1 ORDER BY version LIMIT $2`, from, page)
		if err != nil {
			return fmt.Errorf("state database: change feed: %w", s.cfg.wrap(err))
		}
		type row struct {
			bucket, origin string
			key, value     []byte
			version        int64
		}
		var got []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.bucket, &r.key, &r.value, &r.version, &r.origin); err != nil {
				rows.Close()
				return err
			}
			got = append(got, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("state database: change feed: %w", s.cfg.wrap(err))
		}
		if len(got) == 0 {
			return nil
		}
		remote := map[recKey][]byte{}
		s.subMu.RLock()
		for _, r := range got {
			if r.origin == s.origin {
				continue
			}
			remote[recKey{r.bucket, string(r.key)}] = r.value
			for _, fn := range s.subs[r.bucket] {
				fn(string(r.key), r.value)
			}
			s.applied.Add(1)
		}
		s.subMu.RUnlock()
		last := got[len(got)-1].version
		s.version.Store(last)
		s.mirror(remote, last)
		if len(got) < page {
			return nil
		}
	}
}

// ForEach implements policy.Store, in key order. While the database is
// unreachable and Config.Offline is set it reads the local snapshot.
func (s *Store) ForEach(bucket string, fn func(key, value []byte) error) error {
	if s.servingSnapshot() {
		return s.cfg.Snapshot.ForEach(bucket, fn)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 60*time.Second)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM easgate_records WHERE bucket = $1 AND value IS NOT NULL ORDER BY key`, bucket)
	if err != nil {
		if s.offline(err) {
			return s.cfg.Snapshot.ForEach(bucket, fn)
		}
		return fmt.Errorf("state database: %w", s.cfg.wrap(err))
	}
	defer rows.Close()
	var k, v []byte
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error { return fn(k, v) })
	if err != nil {
		return fmt.Errorf("state database: %w", s.cfg.wrap(err))
	}
	return nil
}

// Get implements policy.Store.
func (s *Store) Get(bucket, key string) ([]byte, bool, error) {
	if s.servingSnapshot() {
		return s.cfg.Snapshot.Get(bucket, key)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM easgate_records WHERE bucket = $1 AND key = $2 AND value IS NOT NULL`, bucket, []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		if s.offline(err) {
			return s.cfg.Snapshot.Get(bucket, key)
		}
		return nil, false, fmt.Errorf("state database: %w", s.cfg.wrap(err))
	}
	return v, true, nil
}

// servingSnapshot reports whether reads go straight to the snapshot: the
// store was opened offline and has not reached the database since, so a
// start does not wait for one connection timeout per table it loads.
func (s *Store) servingSnapshot() bool {
	return s.cfg.Offline && s.cfg.Snapshot != nil && !s.cfg.ReadOnly && !s.Up()
}

func (s *Store) offline(err error) bool {
	if s.cfg.Snapshot == nil || !s.cfg.Offline || s.cfg.ReadOnly {
		return false
	}
	s.setHealth(err)
	return true
}

// TryLease takes or renews the lease name for ttl and reports whether this
// node holds it: the jobs one node does at a time (the Graph pull) run
// only while it is held. A database error holds nothing.
func (s *Store) TryLease(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	var holder string
	err := s.pool.QueryRow(ctx, `INSERT INTO easgate_leases (name, holder, expires) VALUES ($1, $2, now() + $3::interval)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE easgate_leases.holder = excluded.holder OR easgate_leases.expires < now()
		RETURNING holder`, name, s.origin, fmt.Sprintf("%d milliseconds", ttl.Milliseconds())).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state database: lease %s: %w", name, s.cfg.wrap(err))
	}
	return holder == s.origin, nil
}

// ReleaseLease gives the lease up (at shutdown), so another node takes it
// without waiting for it to expire.
func (s *Store) ReleaseLease(ctx context.Context, name string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM easgate_leases WHERE name = $1 AND holder = $2`, name, s.origin)
	if err != nil {
		return fmt.Errorf("state database: lease %s: %w", name, s.cfg.wrap(err))
	}
	return nil
}

// Close stops the writer and the feed, writing what is queued first (for
// up to timeout d of Config.ConnectTimeout plus 5 s).
func (s *Store) Close() error {
	var err error
	if !s.cfg.ReadOnly && s.Pending() > 0 && s.Up() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ConnectTimeout+5*time.Second)
		err = s.Sync(ctx)
		cancel()
	}
	s.cancel()
	s.mu.Lock()
	s.drained.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
	s.pool.Close()
	return err
}

// connErr is a connection failure with the secrets taken out.
type connErr struct {
	msg         string
	unreachable bool
}

func (e *connErr) Error() string { return e.msg }

// connConfig parses the URL and the PG* environment and reads the
// password file.
func (c Config) connConfig() (*pgx.ConnConfig, error) {
	if c.URL == "" {
		return nil, errors.New("state.url: empty")
	}
	if strings.Contains(c.URL, "://") {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("state.url %q: not a postgres:// URL", c.redactedURL())
		}
	}
	pc, err := pgx.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("state.url %q: %s", c.redactedURL(), c.scrub(unwrapAll(err)))
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("state.password_file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		pc.Password = strings.TrimRight(pw, "\r")
	}
	return pc, nil
}

func unwrapAll(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// redactedURL is the URL with its password replaced.
func (c Config) redactedURL() string {
	if u, err := url.Parse(c.URL); err == nil && strings.Contains(c.URL, "://") {
		return u.Redacted()
	}
	return c.scrub(c.URL)
}

// scrub removes every password this config knows from s.
func (c Config) scrub(s string) string {
	var secrets []string
	if u, err := url.Parse(c.URL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	// A URL that does not parse: the text between "user:" and "@".
	if i := strings.Index(c.URL, "://"); i >= 0 {
		rest := c.URL[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				secrets = append(secrets, rest[colon+1:at])
			}
		}
	}
	if pw := os.Getenv("PGPASSWORD"); pw != "" {
		secrets = append(secrets, pw)
	}
	if c.PasswordFile != "" {
		if b, err := os.ReadFile(c.PasswordFile); err == nil {
			if pw, _, _ := strings.Cut(string(b), "\n"); strings.TrimSpace(pw) != "" {
				secrets = append(secrets, strings.TrimRight(pw, "\r"))
			}
		}
	}
	if i := strings.Index(s, "password="); i >= 0 {
		end := strings.IndexAny(s[i:], " \t'`")
		if end < 0 {
			end = len(s) - i
		}
		s = s[:i] + "password=xxxxx" + s[i+end:]
	}
	for _, p := range secrets {
		if len(p) >= 3 {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	return s
}

// wrap scrubs an error of the driver.
func (c Config) wrap(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(c.scrub(err.Error()))
}

// connError explains a failed connection in the administrator's words.
func (c Config) connError(err error) error {
	msg := c.scrub(err.Error())
	low := strings.ToLower(msg)
	ce := &connErr{}
	switch {
	case strings.Contains(low, "password authentication failed") || strings.Contains(low, "28p01") ||
		strings.Contains(low, "no password") || strings.Contains(low, "28000"):
		ce.msg = "state database: the server refused the credentials (check the user and state.password_file or PGPASSWORD): " + msg
	case strings.Contains(low, "3d000") || (strings.Contains(low, "database") && strings.Contains(low, "does not exist")):
		ce.msg = "state database: the database does not exist (create it, e.g. createdb -O USER easgate): " + msg
	case strings.Contains(low, "tls") || strings.Contains(low, "certificate") || strings.Contains(low, "ssl"):
		ce.msg = "state database: TLS to the server failed (check sslmode and sslrootcert in state.url): " + msg
	default:
		ce.msg = "state database: cannot connect to " + c.redactedURL() + ": " + msg
		ce.unreachable = true
	}
	return ce
}

var _ policy.Store = (*Store)(nil)

// Health implements policy.SharedStore.
func (s *Store) Health() policy.SharedHealth {
	h := policy.SharedHealth{Up: s.Up(), Pending: s.Pending(), Written: s.writes.Load(), Applied: s.applied.Load(), Version: s.version.Load()}
	if err := s.Err(); err != nil {
		h.LastError = err.Error()
	}
	return h
}

var _ policy.SharedStore = (*Store)(nil)

// Count returns the number of live records (what `easgate state copy`
// checks before it writes into a database).
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM easgate_records WHERE value IS NOT NULL`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("state database: %w", s.cfg.wrap(err))
	}
	return n, nil
}

// Redacted returns the URL with any password replaced, for messages.
func (c Config) Redacted() string { return c.redactedURL() }

// SnapshotStore returns the local snapshot store (Config.Snapshot; nil
// without one).
func (s *Store) SnapshotStore() policy.Store { return s.cfg.Snapshot }
