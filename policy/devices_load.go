package policy

import (
	"encoding/json"
	"errors"
	"fmt"
)

// LoadCanonical reads every device record from the store (at start-up) and
// moves records kept under an older spelling to their canonical key: a
// device id stored in its phone's case (before device ids were compared
// case-insensitively), or a user stored as the phone wrote it ("CORP\jdoe")
// that canon (eas.Domains.Canonical of auth.domains; nil keeps users as they
// are) now spells "jdoe@corp.example.com". Without this, every phone would
// start over after an upgrade: a new first-seen time and no device
// information, which puts it back into device discovery.
//
// When two stored records meet at one key, the one seen last is kept, with
// the earliest first-seen time and the device information of either. Moved
// records are written under their new key at the next Flush and their old
// keys are deleted now. Records that do not decode are skipped and
// reported together.
func (d *Devices) LoadCanonical(canon func(string) (string, error)) error {
	return d.loadCanonical(canon, true)
}

// loadCanonical is LoadCanonical; with write false it leaves the store as it
// is (a read-only store: the records are moved in memory only).
func (d *Devices) loadCanonical(canon func(string) (string, error), write bool) error {
	if d.store == nil {
		return nil
	}
	var bad []error
	var stale []string
	err := d.store.ForEach(BucketDevices, func(key, value []byte) error {
		var r DeviceRecord
		if err := json.Unmarshal(value, &r); err != nil || r.DeviceID == "" {
			bad = append(bad, errors.New("device record "+string(key)+" does not decode"))
			return nil
		}
		if canon != nil {
			if u, err := canon(r.User); err == nil {
				r.User = u
			}
		}
		moved := string(key) != r.Key()
		if moved {
			stale = append(stale, string(key))
		}
		k := d.key([]byte(r.User), []byte(r.DeviceID))
		sh := d.shard(k)
		sh.lock()
		if prev, ok := sh.m[k]; ok {
			r = mergeRecords(*prev, r)
			moved = true
		}
		sh.m[k] = &r
		sh.mu.Unlock()
		if moved {
			d.dirtyMu.Lock()
			d.dirty[k] = struct{}{}
			d.dirtyMu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(stale) > 0 && write {
		if err := d.store.Update(BucketDevices, nil, stale); err != nil {
			bad = append(bad, fmt.Errorf("%d device records under an old key: %w", len(stale), err))
		}
	}
	return errors.Join(bad...)
}

// mergeRecords joins two records of one device: the one seen last, with
// the earliest first-seen time and whatever device information and
// certificate binding either had.
func mergeRecords(a, b DeviceRecord) DeviceRecord {
	if b.LastSeen.Before(a.LastSeen) {
		a, b = b, a
	}
	if !a.FirstSeen.IsZero() && (b.FirstSeen.IsZero() || a.FirstSeen.Before(b.FirstSeen)) {
		b.FirstSeen = a.FirstSeen
	}
	if b.Info.IsZero() {
		b.Info = a.Info
	}
	if b.CertFingerprint == "" {
		b.CertFingerprint = a.CertFingerprint
	}
	return b
}
