package quarantine

import (
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// Settings status values (MS-ASCMD §2.2.3.177.14).
const (
	settingsOK             = 1
	settingsDeniedByPolicy = 7
)

// settings decides a quarantined device's Settings request. Settings is
// forwarded (DeviceInformation and UserInformation arrive and are read
// there), except when it would change something in the real mailbox: an
// Oof (out-of-office) or DevicePassword element. Exchange answers those
// "denied by policy" for a quarantined device (PROTOCOL.md §4.3), and so
// does easgate, answering the whole request itself: Settings Status 1,
// then in request order DeviceInformation Status 1 (easgate has read it),
// Oof, DevicePassword, UserInformation and RightsManagementInformation
// Status 7 (at most eas.MaxSettingsProperties entries). The body is read
// by eas.ReadSettings; a body it cannot read is forwarded for Exchange to
// judge.
func settings(body []byte) (Answer, bool) {
	if len(body) == 0 {
		return Answer{}, false
	}
	var info eas.SettingsInfo
	if err := eas.ReadSettings(body, &info); err != nil || !(info.Has(eas.SettingsOof) || info.Has(eas.SettingsDevicePassword)) {
		return Answer{}, false
	}
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.SettingsSettings)
	e.Element(wbxml.SettingsStatus, "1")
	for _, p := range info.List() {
		e.Start(p.Tag())
		if p == eas.SettingsDeviceInformation {
			e.Element(wbxml.SettingsStatus, itoaSmall(settingsOK))
		} else {
			e.Element(wbxml.SettingsStatus, itoaSmall(settingsDeniedByPolicy))
		}
		e.End()
	}
	e.End()
	return emulated(e.Bytes()), true
}

func itoaSmall(n int) string { return string(rune('0' + n)) }
