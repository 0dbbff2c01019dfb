package eas

// DeviceInfo is what a device reports about itself in Settings
// DeviceInformation (14.0) or in the initial Provision request (14.1 and
// later), MS-ASCMD §2.2.3.45. Every field is optional. Values are copies:
// they stay valid after the body buffer is reused.
type DeviceInfo struct {
	Model             string `json:"model,omitempty"`
	IMEI              string `json:"imei,omitempty"`
	FriendlyName      string `json:"friendly_name,omitempty"`
	OS                string `json:"os,omitempty"`
	OSLanguage        string `json:"os_language,omitempty"`
	PhoneNumber       string `json:"phone_number,omitempty"`
	UserAgent         string `json:"user_agent,omitempty"`
	EnableOutboundSMS string `json:"enable_outbound_sms,omitempty"`
	MobileOperator    string `json:"mobile_operator,omitempty"`
}

// IsZero reports whether no field was reported.
func (d *DeviceInfo) IsZero() bool { return *d == DeviceInfo{} }
