package eas

import "github.com/easgate/easgate/eas/wbxml"

// PolicyTypeWBXML is the PolicyType of protocol 12.0 and later
// (MS-ASPROV §2.2.2.44); 2.5 used "MS-WAP-Provisioning-XML".
const PolicyTypeWBXML = "MS-EAS-Provisioning-WBXML"

// ProvisionInfo is what ReadProvision found in a Provision request or
// response (MS-ASPROV §2.2.2). Integer fields are 0 when the element was
// absent.
type ProvisionInfo struct {
	// PolicyType of the first Policy ("MS-EAS-Provisioning-WBXML").
	PolicyType string
	// PolicyKey of the first Policy: the temporary key in an initial
	// response and in the acknowledgement, the final key in the
	// acknowledgement's response.
	PolicyKey    uint32
	HasPolicyKey bool
	// Status of the first Policy: the policy status in a response (1 ok,
	// 2 no policy, 3 unknown PolicyType, 4 corrupt, 5 wrong key), the
	// client's result in an acknowledgement (1 applied, 2 partial, 3 not
	// applied, 4 third party).
	Status int
	// ProvisionStatus is the top-level Provision > Status of a response
	// (1 ok, 2 protocol error, 3 server error, or a common status ≥ 101).
	ProvisionStatus int
	// HasDeviceInfo is true when the body carries settings:DeviceInformation
	// > Set (required in 14.1+ initial requests; absence → status 165).
	HasDeviceInfo bool
	// RemoteWipe is true when the body has a RemoteWipe element (in a
	// response: the server orders a wipe). AccountOnlyRemoteWipe likewise
	// (16.1).
	RemoteWipe            bool
	AccountOnlyRemoteWipe bool
	// RemoteWipeStatus is RemoteWipe > Status of a wipe acknowledgement
	// (1 wiped, 2 failed).
	RemoteWipeStatus int
}

// ReadProvision reads a Provision request or response body into dst
// (cleared first). When info is non-nil, the DeviceInformation of a 14.1+
// initial request is read into it as ReadDeviceInfo would (info is cleared
// only when the body has one). The EASProvisionDoc in Data is skipped
// unread. An empty body, another root element and data after the root
// element are errors.
func ReadProvision(body []byte, dst *ProvisionInfo, info *DeviceInfo) error {
	*dst = ProvisionInfo{}
	r := newBodyReader("Provision", body)
	defer r.release()
	if len(body) == 0 {
		return r.empty()
	}
	return r.document(wbxml.ProvisionProvision, func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.ProvisionStatus:
			dst.ProvisionStatus, err = r.int(tok)
		case wbxml.SettingsDeviceInformation:
			if !tok.HasContent {
				return nil
			}
			var scratch DeviceInfo
			di := info
			if di == nil {
				di = &scratch
			}
			found, err := r.deviceInformation(di)
			if err != nil || !found {
				return err
			}
			dst.HasDeviceInfo = true
			// Finish DeviceInformation after its Set.
			return r.finish()
		case wbxml.ProvisionPolicies:
			err = r.policies(tok, dst)
		case wbxml.ProvisionRemoteWipe:
			dst.RemoteWipe = true
			err = r.remoteWipe(tok, dst)
		case wbxml.ProvisionAccountOnlyRemoteWipe:
			dst.AccountOnlyRemoteWipe = true
			err = r.remoteWipe(tok, dst)
		default:
			err = r.skip(tok)
		}
		return err
	})
}

// finish skips the rest of the current container, up to its end.
func (r *bodyReader) finish() error {
	return r.children(r.skip)
}

// policies reads Policies > Policy; only the first Policy is kept.
func (r *bodyReader) policies(start wbxml.Token, dst *ProvisionInfo) error {
	seen := false
	return r.each(start, func(tok wbxml.Token) error {
		if tok.Tag != wbxml.ProvisionPolicy || seen || !tok.HasContent {
			return r.skip(tok)
		}
		seen = true
		return r.policy(dst)
	})
}

func (r *bodyReader) policy(dst *ProvisionInfo) error {
	return r.children(func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.ProvisionPolicyType:
			err = r.str(tok, &dst.PolicyType, maxShortValue)
		case wbxml.ProvisionPolicyKey:
			// A decimal uint32 (MS-ASPROV §2.2.2.42). The value is a
			// credential-like token: errors never quote it.
			if !tok.HasContent {
				return nil
			}
			k, err := r.uint(tok, 1<<32-1)
			if err != nil {
				return err
			}
			dst.PolicyKey, dst.HasPolicyKey = uint32(k), true
		case wbxml.ProvisionStatus:
			dst.Status, err = r.int(tok)
		default: // Data > EASProvisionDoc and anything newer
			err = r.skip(tok)
		}
		return err
	})
}

func (r *bodyReader) remoteWipe(start wbxml.Token, dst *ProvisionInfo) error {
	return r.each(start, func(tok wbxml.Token) (err error) {
		if tok.Tag != wbxml.ProvisionStatus {
			return r.skip(tok)
		}
		dst.RemoteWipeStatus, err = r.int(tok)
		return err
	})
}
