package eas

import (
	"strconv"

	"github.com/easgate/easgate/eas/wbxml"
)

// SettingsProperty is a named property of a Settings request: a direct
// child of the Settings root (MS-ASCMD §2.2.1.18).
type SettingsProperty uint8

// Named properties of Settings.
const (
	SettingsOof                         SettingsProperty = iota + 1 // out-of-office Get or Set, MS-ASCMD §2.2.3.122
	SettingsDevicePassword                                          // recovery password Set, §2.2.3.46
	SettingsDeviceInformation                                       // device properties Set, §2.2.3.45
	SettingsUserInformation                                         // e-mail addresses Get, §2.2.3.192
	SettingsRightsManagementInformation                             // IRM templates Get, §2.2.3.156
)

var settingsPropertyTags = [...]wbxml.Tag{
	SettingsOof:                         wbxml.SettingsOof,
	SettingsDevicePassword:              wbxml.SettingsDevicePassword,
	SettingsDeviceInformation:           wbxml.SettingsDeviceInformation,
	SettingsUserInformation:             wbxml.SettingsUserInformation,
	SettingsRightsManagementInformation: wbxml.SettingsRightsManagementInformation,
}

// Tag returns the Settings element of the property (wbxml.SettingsOof,
// ...), or 0 for an invalid property. The same element carries the
// property's Status in the response.
func (p SettingsProperty) Tag() wbxml.Tag {
	if int(p) < len(settingsPropertyTags) {
		return settingsPropertyTags[p]
	}
	return 0
}

// String returns the element name: "Oof", "DevicePassword", ...
func (p SettingsProperty) String() string {
	if t := p.Tag(); t != 0 {
		return t.Name()
	}
	return "SettingsProperty(" + strconv.Itoa(int(p)) + ")"
}

// settingsProperty maps a child of Settings to its property; 0 for
// elements that are not named properties.
func settingsProperty(t wbxml.Tag) SettingsProperty {
	for p, pt := range settingsPropertyTags {
		if pt == t && p != 0 {
			return SettingsProperty(p)
		}
	}
	return 0
}

// MaxSettingsProperties is how many named properties ReadSettings lists in
// request order. A real request holds one to three; further ones are not
// listed but still set their Has field.
const MaxSettingsProperties = 16

// SettingsInfo is what ReadSettings found in a Settings body.
type SettingsInfo struct {
	// Properties holds the named properties in request order, one entry
	// per element (a property sent twice is listed twice); only the first
	// NumProperties entries are set. List returns them as a slice.
	Properties    [MaxSettingsProperties]SettingsProperty
	NumProperties int
	// present has bit p set when the body holds property p at least
	// once, wherever it is (also beyond MaxSettingsProperties): see Has.
	present uint8
}

// List returns the listed properties, Properties[:NumProperties]. The
// slice aliases s.
func (s *SettingsInfo) List() []SettingsProperty {
	n := min(max(s.NumProperties, 0), len(s.Properties))
	return s.Properties[:n]
}

// Has reports whether the body holds property p, also when it comes
// after the MaxSettingsProperties listed ones.
func (s *SettingsInfo) Has(p SettingsProperty) bool {
	return p.Tag() != 0 && s.present&(1<<p) != 0
}

// add records one occurrence of p.
func (s *SettingsInfo) add(p SettingsProperty) {
	if s.NumProperties < len(s.Properties) {
		s.Properties[s.NumProperties] = p
		s.NumProperties++
	}
	s.present |= 1 << p
}

// ReadSettings reads a Settings request (MS-ASCMD §2.2.1.18) into dst,
// which is cleared first: the named properties that are direct children
// of the Settings root — Oof (§2.2.3.122), DevicePassword (§2.2.3.46),
// DeviceInformation (§2.2.3.45), UserInformation (§2.2.3.192) and
// RightsManagementInformation (§2.2.3.156) — in request order. Their
// content (Get, Set and what those hold) is skipped unread; use
// ReadDeviceInfo for DeviceInformation > Set. Other children of Settings
// are skipped too, so a Settings response lists its properties the same
// way (its Status is not read).
//
// An empty body, another root element and data after the root element are
// errors (*BodyError); an empty Settings root is not. Errors carry
// constant messages: no value from the body (passwords, OOF text, device
// data) appears in them. ReadSettings allocates nothing.
func ReadSettings(body []byte, dst *SettingsInfo) error {
	*dst = SettingsInfo{}
	r := newBodyReader("Settings", body)
	defer r.release()
	if len(body) == 0 {
		return r.empty()
	}
	return r.document(wbxml.SettingsSettings, func(tok wbxml.Token) error {
		if p := settingsProperty(tok.Tag); p != 0 {
			dst.add(p)
		}
		return r.skip(tok)
	})
}
