package eas

import (
	"strconv"

	"github.com/easgate/easgate/eas/wbxml"
)

// wbxmlHeader is the WBXML 1.3 header every EAS body starts with: version
// 1.3, unknown public id, UTF-8, no string table (MS-ASWBXML §2.1.1).
var wbxmlHeader = [4]byte{0x03, 0x01, 0x6A, 0x00}

// respStatusTags maps a command to its root element and the Status element
// of the same namespace (MS-ASCMD §2.2.3.177.x).
func respStatusTags(cmd Command) (root, status wbxml.Tag, ok bool) {
	switch cmd {
	case CmdSync:
		return wbxml.AirSyncSync, wbxml.AirSyncStatus, true
	case CmdFolderSync:
		return wbxml.FolderHierarchyFolderSync, wbxml.FolderHierarchyStatus, true
	case CmdFolderCreate:
		return wbxml.FolderHierarchyFolderCreate, wbxml.FolderHierarchyStatus, true
	case CmdFolderDelete:
		return wbxml.FolderHierarchyFolderDelete, wbxml.FolderHierarchyStatus, true
	case CmdFolderUpdate:
		return wbxml.FolderHierarchyFolderUpdate, wbxml.FolderHierarchyStatus, true
	case CmdPing:
		return wbxml.PingPing, wbxml.PingStatus, true
	case CmdProvision:
		return wbxml.ProvisionProvision, wbxml.ProvisionStatus, true
	case CmdSettings:
		return wbxml.SettingsSettings, wbxml.SettingsStatus, true
	case CmdGetItemEstimate:
		return wbxml.ItemEstimateGetItemEstimate, wbxml.ItemEstimateStatus, true
	case CmdMoveItems:
		return wbxml.MoveMoveItems, wbxml.MoveStatus, true
	case CmdMeetingResponse:
		return wbxml.MeetingResponseMeetingResponse, wbxml.MeetingResponseStatus, true
	case CmdSearch:
		return wbxml.SearchSearch, wbxml.SearchStatus, true
	case CmdItemOperations:
		return wbxml.ItemOperationsItemOperations, wbxml.ItemOperationsStatus, true
	case CmdResolveRecipients:
		return wbxml.ResolveRecipientsResolveRecipients, wbxml.ResolveRecipientsStatus, true
	case CmdValidateCert:
		return wbxml.ValidateCertValidateCert, wbxml.ValidateCertStatus, true
	case CmdSendMail:
		return wbxml.ComposeMailSendMail, wbxml.ComposeMailStatus, true
	case CmdSmartReply:
		return wbxml.ComposeMailSmartReply, wbxml.ComposeMailStatus, true
	case CmdSmartForward:
		return wbxml.ComposeMailSmartForward, wbxml.ComposeMailStatus, true
	case CmdFind:
		return wbxml.FindFind, wbxml.FindStatus, true
	}
	// GetAttachment has no XML body; the legacy commands, OPTIONS and
	// unknown commands have no status root either.
	return 0, 0, false
}

// StatusNamespaceRoot returns the root element of cmd's response, in whose
// namespace a common status is sent: FolderSync → FolderHierarchy:FolderSync,
// Sync → AirSync:Sync, MoveItems → Move:MoveItems, SendMail/SmartReply/
// SmartForward → ComposeMail (a 14.0+ namespace), and so on. ok is false for
// commands without an XML response root (GetAttachment, OPTIONS, the legacy
// 2.x commands and unknown commands): those get a bare HTTP code.
func StatusNamespaceRoot(cmd Command) (root wbxml.Tag, ok bool) {
	root, _, ok = respStatusTags(cmd)
	return root, ok
}

// AppendStatusBody appends the WBXML body <Root><Status>N</Status></Root>
// in cmd's namespace to dst, e.g. for FolderSync and 129:
// 03 01 6A 00 00 07 56 4C 03 31 32 39 00 01 01. ok is false, and dst is
// returned unchanged, when cmd has no XML root or status is negative. It
// allocates nothing when dst has room for the body (at most 22 bytes).
func AppendStatusBody(dst []byte, cmd Command, status int) ([]byte, bool) {
	root, st, ok := respStatusTags(cmd)
	if !ok || status < 0 {
		return dst, false
	}
	dst = append(dst, wbxmlHeader[:]...)
	if p := root.Page(); p != 0 {
		dst = append(dst, 0x00, p) // SWITCH_PAGE; the decoder starts at page 0
	}
	// Root and Status share a page, so no second switch is needed.
	dst = append(dst, root.Token()|0x40, st.Token()|0x40, 0x03) // content bit; STR_I
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, 0x00, 0x01, 0x01) // string end, END Status, END root
	return dst, true
}

// ErrorAnswer is how to answer a request that easgate refuses, the way
// Exchange's AirSyncResponse.SetErrorResponse does (PROTOCOL.md §1.7).
type ErrorAnswer struct {
	// HTTPStatus is 200 when Body is true, the fallback code otherwise.
	HTTPStatus int
	// Body is true when the answer is a status body in the command's
	// namespace (AppendStatusBody).
	Body bool
	// Status is the common status inside the body; 0 when Body is false.
	Status int
}

// ChooseErrorAnswer applies Exchange's status selection rule (PROTOCOL.md
// §1.7) for common status `common` and fallback HTTP code `httpFallback`:
//
//  1. The code can be carried in a body when the protocol version allows
//     it: 14.0 up to 163, 14.1 up to 177, 16.0 up to 185, any code after
//     16.0; before 14.0 only codes below 101 (never a common status).
//  2. If so, and the command has an XML root, and the fallback is not a
//     redirect (441, 451): HTTP 200 with <Root><Status>C</Status></Root>.
//  3. Otherwise: the fallback HTTP code with no body.
//
// A common status ≤ 0 means "none" and always gives the HTTP code. So a
// blocked 12.1 phone gets 403, a blocked 14.1 phone HTTP 200 with Status
// 129, and GetAttachment always gets the HTTP code.
func ChooseErrorAnswer(v Version, cmd Command, common int, httpFallback int) ErrorAnswer {
	if statusAllowed(v, common) && httpFallback != 441 && httpFallback != 451 {
		if _, ok := StatusNamespaceRoot(cmd); ok {
			return ErrorAnswer{HTTPStatus: 200, Body: true, Status: common}
		}
	}
	return ErrorAnswer{HTTPStatus: httpFallback}
}

// AppendErrorAnswer chooses the answer as ChooseErrorAnswer does and, for a
// status body, appends it to dst. body is dst with the body appended, or
// dst unchanged when the answer is a bare HTTP code (so the body proper is
// body[len(dst):]). It allocates nothing when dst has room.
func AppendErrorAnswer(dst []byte, v Version, cmd Command, common, httpFallback int) (httpStatus int, body []byte) {
	a := ChooseErrorAnswer(v, cmd, common, httpFallback)
	if !a.Body {
		return a.HTTPStatus, dst
	}
	body, _ = AppendStatusBody(dst, cmd, a.Status)
	return a.HTTPStatus, body
}
