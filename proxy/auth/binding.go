package auth

import (
	"fmt"
	"time"

	"github.com/easgate/easgate/policy"
)

// BindingMode is auth.device_binding.
type BindingMode uint8

// Device-binding modes.
const (
	// BindingOff does not look at certificates per device.
	BindingOff BindingMode = iota
	// BindingReport binds devices and reports a different certificate
	// (Result.Mismatch) without refusing.
	BindingReport
	// BindingEnforce refuses a device that shows a different certificate
	// (403, reason device_binding).
	BindingEnforce
)

var bindingNames = [...]string{BindingOff: "off", BindingReport: "report", BindingEnforce: "enforce"}

func (m BindingMode) String() string {
	if int(m) < len(bindingNames) {
		return bindingNames[m]
	}
	return fmt.Sprintf("binding(%d)", uint8(m))
}

// ParseBindingMode reads an auth.device_binding value; "" means off.
func ParseBindingMode(s string) (BindingMode, error) {
	if s == "" {
		return BindingOff, nil
	}
	for i, n := range bindingNames {
		if n == s {
			return BindingMode(i), nil
		}
	}
	return 0, fmt.Errorf("auth: device_binding %q: want off, report or enforce", s)
}

// DeviceTable is the part of *policy.Devices the Binder uses: the binding is
// the CertFingerprint of the device's record, so it is persisted with the
// record (policy.Devices.Flush) and shown wherever device records are.
type DeviceTable interface {
	Get(user, device []byte) (policy.DeviceRecord, bool)
	Update(user, device []byte, now time.Time, fn func(*policy.DeviceRecord)) policy.DeviceRecord
}

// Binder binds each user+device to the client certificate it first used.
// It is safe for concurrent use when the DeviceTable is.
//
// The fingerprint is the SHA-256 of the whole certificate, so a renewed
// certificate is a different one: plan renewals (run in report mode, or
// clear the device's cert_fingerprint) before enforcing. A bound device
// that later connects without any certificate (possible in auth.mode
// either or credentials) is a mismatch too: the binding says this device
// uses a certificate, and a password alone must not replace it.
type Binder struct {
	mode    BindingMode
	devices DeviceTable
}

// NewBinder builds a Binder for auth.device_binding. devices may be nil only
// when the mode is off.
func NewBinder(mode string, devices DeviceTable) (*Binder, error) {
	m, err := ParseBindingMode(mode)
	if err != nil {
		return nil, err
	}
	if m != BindingOff && devices == nil {
		return nil, fmt.Errorf("auth: device_binding %s needs the device table", m)
	}
	return &Binder{mode: m, devices: devices}, nil
}

// Mode returns the configured mode.
func (b *Binder) Mode() BindingMode { return b.mode }

// BindResult is Binder.Check's answer.
type BindResult struct {
	// OK is false only in enforce mode, on a mismatch.
	OK bool
	// Mismatch: the device is bound to another certificate (or came
	// without one). Reason is then ReasonDeviceBinding.
	Mismatch bool
	Reason   Reason
	// Bound: this call bound the device to fingerprint (first use).
	Bound bool
}

// Check compares the certificate fingerprint (certs.Identity.Fingerprint,
// "" when no certificate was verified) with the one bound to user+device,
// binding it on first use. user and device are the keys of the device
// table (the EAS User and DeviceId). With a bound, matching device it does
// not allocate.
func (b *Binder) Check(user, device []byte, fingerprint string, now time.Time) BindResult {
	if b.mode == BindingOff || len(device) == 0 {
		return BindResult{OK: true}
	}
	rec, ok := b.devices.Get(user, device)
	bound := ok && rec.CertFingerprint != ""
	switch {
	case bound && rec.CertFingerprint == fingerprint:
		return BindResult{OK: true}
	case bound:
		return b.mismatch()
	case fingerprint == "":
		return BindResult{OK: true} // nothing to bind, nothing bound
	}
	var first bool
	got := b.devices.Update(user, device, now, func(r *policy.DeviceRecord) {
		if r.CertFingerprint == "" {
			r.CertFingerprint = fingerprint
			first = true
		}
	})
	if got.CertFingerprint != fingerprint {
		return b.mismatch() // another request bound a different certificate first
	}
	return BindResult{OK: true, Bound: first}
}

func (b *Binder) mismatch() BindResult {
	return BindResult{OK: b.mode != BindingEnforce, Mismatch: true, Reason: ReasonDeviceBinding}
}
