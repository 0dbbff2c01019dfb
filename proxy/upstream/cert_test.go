package upstream

import (
	"encoding/base64"
)

// pingNoChanges is a Ping answer: Status 1, no changes.
var pingNoChanges = []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x47, 0x03, 0x31, 0x00, 0x01, 0x01}

// testBasicAuth is the Authorization header of a phone's Basic login.
var testBasicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(`CORP\jdoe:s3cret`))
