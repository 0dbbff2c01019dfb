package quarantine

import (
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
// Status 7. A body easgate cannot read is forwarded for Exchange to judge.
func settings(body []byte) (Answer, bool) {
	if len(body) == 0 {
		return Answer{}, false
	}
	p := &parser{cmd: "Settings"}
	root, err := p.root(body, wbxml.SettingsSettings)
	if err != nil || !root.HasContent {
		return Answer{}, false
	}
	var order []wbxml.Tag
	deny := false
	for {
		tok, end, err := p.child()
		if err != nil {
			return Answer{}, false
		}
		if end {
			break
		}
		switch tok.Tag {
		case wbxml.SettingsOof, wbxml.SettingsDevicePassword:
			deny = true
			fallthrough
		case wbxml.SettingsDeviceInformation, wbxml.SettingsUserInformation, wbxml.SettingsRightsManagementInformation:
			if len(order) < 16 {
				order = append(order, tok.Tag)
			}
		}
		if err := p.skip(tok); err != nil {
			return Answer{}, false
		}
	}
	if p.end() != nil || !deny {
		return Answer{}, false
	}
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.SettingsSettings)
	e.Element(wbxml.SettingsStatus, "1")
	for _, t := range order {
		e.Start(t)
		if t == wbxml.SettingsDeviceInformation {
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
