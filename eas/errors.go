package eas

import "strconv"

// ErrorCode classifies why a request could not be parsed. It implements
// error, so callers can write errors.Is(err, eas.ErrMissingDeviceID).
type ErrorCode uint8

// Error codes returned in ParseError.Code.
const (
	ErrNone               ErrorCode = iota
	ErrNotEAS                       // path is not /Microsoft-Server-ActiveSync[/default.eas|/Proxy/default.eas]
	ErrMethod                       // method other than POST or OPTIONS
	ErrMissingCmd                   // POST without Cmd (or with an empty one)
	ErrBadCommand                   // Cmd value that is not 1*ALPHA
	ErrMissingDeviceID              // no DeviceId parameter (common status 108)
	ErrInvalidDeviceID              // DeviceId empty, over 32 bytes or with characters outside the spec's set (108)
	ErrMissingDeviceType            // no DeviceType parameter (109)
	ErrInvalidDeviceType            // DeviceType empty, over 64 bytes or not VCHAR (109)
	ErrBadBase64                    // base64 query that does not decode
	ErrTruncated                    // a length in the base64 query runs past the end
	ErrBadVersion                   // unknown protocol version (header or base64 byte)
	ErrBadPolicyKey                 // X-MS-PolicyKey not a decimal uint32, or base64 key length not 0 or 4
	ErrOversize                     // a field or the whole query over its limit
	ErrDuplicateParam               // a parameter given twice
	ErrBadPercentEncoding           // '%' not followed by two hex digits
	ErrBadAuthorization             // malformed Authorization header
	ErrBadValue                     // control characters in a value, bad T/F flag, bad Options length
	ErrUnknownParam                 // base64 parameter tag easgate (and Exchange) does not know
	ErrBadParamName                 // plain parameter name that is not 1*ALPHA ('%'-encoded, '+', non-ASCII), or a pair without '='
)

var errorCodeNames = [...]string{
	ErrNone:               "none",
	ErrNotEAS:             "not_eas",
	ErrMethod:             "method",
	ErrMissingCmd:         "missing_cmd",
	ErrBadCommand:         "bad_command",
	ErrMissingDeviceID:    "missing_device_id",
	ErrInvalidDeviceID:    "invalid_device_id",
	ErrMissingDeviceType:  "missing_device_type",
	ErrInvalidDeviceType:  "invalid_device_type",
	ErrBadBase64:          "bad_base64",
	ErrTruncated:          "truncated",
	ErrBadVersion:         "bad_version",
	ErrBadPolicyKey:       "bad_policy_key",
	ErrOversize:           "oversize",
	ErrDuplicateParam:     "duplicate_param",
	ErrBadPercentEncoding: "bad_percent_encoding",
	ErrBadAuthorization:   "bad_authorization",
	ErrBadValue:           "bad_value",
	ErrUnknownParam:       "unknown_param",
	ErrBadParamName:       "bad_param_name",
}

// String returns a stable snake_case name, suitable for logs and metrics
// labels ("missing_device_id").
func (c ErrorCode) String() string {
	if int(c) < len(errorCodeNames) {
		return errorCodeNames[c]
	}
	return "code" + strconv.Itoa(int(c))
}

// Error makes ErrorCode usable as a sentinel with errors.Is.
func (c ErrorCode) Error() string { return "eas: " + c.String() }

// Common status and HTTP status used for each code (see ParseError).
func (c ErrorCode) statuses() (status, httpStatus int) {
	switch c {
	case ErrNone:
		return 0, 200
	case ErrNotEAS:
		return 0, 404
	case ErrMethod:
		return 0, 405
	case ErrMissingDeviceID, ErrInvalidDeviceID:
		return 108, 400
	case ErrMissingDeviceType, ErrInvalidDeviceType:
		return 109, 400
	case ErrBadAuthorization:
		return 0, 401
	}
	return 0, 400
}

// ParseError describes why Request.Parse failed.
//
// Field names the part of the request (a query parameter name such as
// "DeviceId", a base64 field such as "PolicyKey", a header name such as
// "X-MS-PolicyKey", or "path", "method", "query"). Offset is a byte offset:
// into the raw query for the plain form and base64 characters, into the
// DECODED bytes for base64 field errors (ErrTruncated and later), into the
// header value for header errors, into the path for ErrNotEAS.
//
// Status is the EAS common status Exchange answers with (108 or 109 for
// device id/type problems; 0 when there is none, for which the HTTP status
// is sent alone). HTTPStatus is the status for clients below 14.0 or when no
// common status applies. Msg is a constant phrase; neither Msg nor Error()
// ever contains Authorization contents or a password.
type ParseError struct {
	Field      string
	Offset     int
	Code       ErrorCode
	Status     int
	HTTPStatus int
	Msg        string
}

// Error formats as "eas: DeviceId: missing (offset 34)".
func (e *ParseError) Error() string {
	return "eas: " + e.Field + ": " + e.Msg + " (offset " + strconv.Itoa(e.Offset) + ")"
}

// Is reports whether target is e's ErrorCode, so errors.Is(err, ErrTruncated)
// works.
func (e *ParseError) Is(target error) bool {
	c, ok := target.(ErrorCode)
	return ok && c == e.Code
}
