package quarantine

import (
	"strings"
)

// ApplyRemote applies another node's change to a quarantine record (value
// nil: released) without writing it back, so that a phone that reaches
// this node next continues the episode the other node began: the same
// sync keys, and the notice delivered once. It returns the device so that
// the caller can wake its held requests.
func (e *Emulator) ApplyRemote(key string, value []byte) (user, device string, ok bool) {
	if value == nil {
		e.mu.Lock()
		en := e.m[key]
		delete(e.m, key)
		e.mu.Unlock()
		if en == nil {
			u, d, _ := strings.Cut(key, "\x00")
			return u, d, true
		}
		en.mu.Lock()
		defer en.mu.Unlock()
		return en.rec.User, en.rec.DeviceID, true
	}
	r, ok := decodeRecord(value)
	if !ok {
		return "", "", false
	}
	k := string(keyBuf(nil, []byte(r.User), []byte(r.DeviceID)))
	e.mu.Lock()
	en := e.m[k]
	if en == nil {
		e.m[k] = &entry{rec: r}
		e.mu.Unlock()
		return r.User, r.DeviceID, true
	}
	e.mu.Unlock()
	en.mu.Lock()
	en.rec = r
	en.mu.Unlock()
	return r.User, r.DeviceID, true
}
