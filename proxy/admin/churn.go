package admin

import (
	"strings"

	"github.com/easgate/easgate/policy"
)

// Device-ID churn: a wipe, a reset or an app reinstall gives a phone a new
// DeviceId, which puts it back in quarantine (Exchange KB 3013802). A new
// device whose user and DeviceInformation match a device already allowed
// for that user is shown as its probable successor, and `easgate devices
// allow --like OLD` carries the approval over (Request.Like).

// UserDevices returns every device of the users of recs, by user, in one
// pass over the table.
func UserDevices(d *policy.Devices, recs []policy.DeviceRecord) map[string][]policy.DeviceRecord {
	users := map[string][]policy.DeviceRecord{}
	for i := range recs {
		if churnCandidate(&recs[i]) {
			users[recs[i].User] = nil
		}
	}
	if len(users) == 0 {
		return users
	}
	d.Each(func(r *policy.DeviceRecord) {
		if list, ok := users[r.User]; ok {
			users[r.User] = append(list, *r)
		}
	})
	return users
}

// churnCandidate: a device that is refused and has reported its
// DeviceInformation.
func churnCandidate(r *policy.DeviceRecord) bool {
	return r.State != policy.DeviceAllowed && r.State != "" && !r.Info.IsZero()
}

// allowedDevice: the gateway allows the device, or an administrator did.
func allowedDevice(ov *policy.Overrides, r *policy.DeviceRecord) bool {
	if o, ok := ov.Get(r.User, r.DeviceID); ok {
		return o.Action == ActAllow
	}
	return r.State == policy.DeviceAllowed
}

// sameHardware compares DeviceInformation: the IMEI when both have one,
// else model (present), friendly name and OS, all equal.
func sameHardware(a, b *policy.DeviceRecord) bool {
	if a.Info.IMEI != "" && b.Info.IMEI != "" {
		return strings.EqualFold(a.Info.IMEI, b.Info.IMEI)
	}
	return a.Info.Model != "" && a.Info.Model == b.Info.Model &&
		a.Info.FriendlyName == b.Info.FriendlyName && a.Info.OS == b.Info.OS
}

// Predecessor finds the allowed device among others (the devices of r's
// user) that r probably replaces; the most recently seen one wins.
func Predecessor(ov *policy.Overrides, r *policy.DeviceRecord, others []policy.DeviceRecord) (policy.DeviceRecord, bool) {
	if !churnCandidate(r) {
		return policy.DeviceRecord{}, false
	}
	var best policy.DeviceRecord
	found := false
	for i := range others {
		o := &others[i]
		if strings.EqualFold(o.DeviceID, r.DeviceID) || !allowedDevice(ov, o) || !sameHardware(r, o) {
			continue
		}
		if !found || o.LastSeen.After(best.LastSeen) {
			best, found = *o, true
		}
	}
	return best, found
}
