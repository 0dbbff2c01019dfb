// Package store is easgate's embedded state store: a bbolt file that keeps
// what the gateway learned across restarts (devices seen with their device
// information and first/last seen times, quarantine state, the verdict-cache
// snapshot, lockout counters).
//
// Why bbolt and not SQLite: it is pure Go (no cgo, one small dependency),
// a single file an administrator can back up, and easgate's data is a set of
// small key/value records written in batches, which is what bbolt is for.
// SQLite would give concurrent readers for free but costs either cgo or a very
// large pure-Go translation.
//
// Concurrency across processes: bbolt locks its file while it is open, so the
// gateway does NOT keep the file open. It opens it for each batched write
// (at most once a second) and closes it straight after, so `easgate explain`
// and other tools can read the same file while the gateway runs, waiting at
// most for one short write. Within one process all access is serialised.
//
// The package implements policy.Store; a shared database (several easgate
// nodes) can implement the same interface later. It imports only the
// standard library and bbolt; never proxy, certs or fasthttp.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bolt is a state store in one bbolt file.
type Bolt struct {
	path     string
	readOnly bool
	timeout  time.Duration
	mu       sync.Mutex
}

// Open checks that path can be opened (creating it and its directory's file
// if needed) and returns the store. With readOnly the file must exist and is
// never written.
func Open(path string, readOnly bool) (*Bolt, error) {
	if path == "" {
		return nil, errors.New("state store: empty path")
	}
	b := &Bolt{path: path, readOnly: readOnly, timeout: 10 * time.Second}
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("state store: %w", err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	if err := b.with(false, func(*bolt.DB) error { return nil }); err != nil {
		return nil, err
	}
	return b, nil
}

// Path returns the file's path.
func (b *Bolt) Path() string { return b.path }

func (b *Bolt) with(write bool, fn func(*bolt.DB) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ro := b.readOnly || !write
	if _, err := os.Stat(b.path); ro && errors.Is(err, os.ErrNotExist) && !b.readOnly {
		ro = false // first use: create the file
	}
	db, err := bolt.Open(b.path, 0o600, &bolt.Options{Timeout: b.timeout, ReadOnly: ro})
	if err != nil {
		return fmt.Errorf("state store %s: %w", b.path, err)
	}
	err = fn(db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("state store %s: %w", b.path, cerr)
	}
	return err
}

// Update writes puts and deletes into bucket in one transaction.
func (b *Bolt) Update(bucket string, puts map[string][]byte, deletes []string) error {
	if b.readOnly {
		return errors.New("state store: opened read-only")
	}
	if len(puts) == 0 && len(deletes) == 0 {
		return nil
	}
	return b.with(true, func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte(bucket))
			if err != nil {
				return err
			}
			for k, v := range puts {
				if err := bk.Put([]byte(k), v); err != nil {
					return err
				}
			}
			for _, k := range deletes {
				if err := bk.Delete([]byte(k)); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// ForEach calls fn for every record of bucket, in key order. The slices are
// only valid during the call.
func (b *Bolt) ForEach(bucket string, fn func(key, value []byte) error) error {
	return b.with(false, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte(bucket))
			if bk == nil {
				return nil
			}
			return bk.ForEach(fn)
		})
	})
}

// Get returns one record (a copy).
func (b *Bolt) Get(bucket, key string) ([]byte, bool, error) {
	var out []byte
	var found bool
	err := b.with(false, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte(bucket))
			if bk == nil {
				return nil
			}
			if v := bk.Get([]byte(key)); v != nil {
				out, found = append([]byte(nil), v...), true
			}
			return nil
		})
	})
	return out, found, err
}

// Close implements policy.Store. The file is not held open between calls,
// so there is nothing to release.
func (b *Bolt) Close() error { return nil }

// Buckets returns the names of the file's buckets (what `easgate state
// copy` moves to a shared database).
func (b *Bolt) Buckets() ([]string, error) {
	var out []string
	err := b.with(false, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				out = append(out, string(name))
				return nil
			})
		})
	})
	return out, err
}
