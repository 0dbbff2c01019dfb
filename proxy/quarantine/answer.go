package quarantine

import (
	"strconv"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// ContentTypeWBXML is the Content-Type of every WBXML answer.
const ContentTypeWBXML = "application/vnd.ms-sync.wbxml"

// Answer is what easgate does with one request of a blocked or
// quarantined device.
type Answer struct {
	// Forward is true when the request goes to Exchange unchanged (OPTIONS,
	// Provision, Settings, FolderSync). The other fields are then unset.
	Forward bool
	// HTTPStatus and Body are easgate's own answer. A nil or empty Body
	// means no body (a bare HTTP code, or an empty Sync response).
	HTTPStatus int
	Body       []byte
	// Hold, when positive, is how long to hold the request before sending
	// HTTPStatus and Body: a long poll with nothing to report (a Ping's
	// heartbeat, a Sync's Wait or HeartbeatInterval).
	Hold time.Duration
	// ReleaseBody is the body to send instead when the device is released
	// during the hold: for a Ping, Status 2 with every folder it watched,
	// so the phone Syncs them, reaches Exchange and starts over. nil for
	// other answers (Body is then still correct).
	ReleaseBody []byte
	// Outcome labels the answer for logs and metrics: "forward",
	// "emulated", "hold", "denied", "blocked", "malformed".
	Outcome string
}

// ContentType returns the Content-Type header for the answer's body, or ""
// when there is no body.
func (a *Answer) ContentType() string {
	if len(a.Body) == 0 {
		return ""
	}
	return ContentTypeWBXML
}

// Request is one request of a quarantined or blocked device.
type Request struct {
	Command eas.Command
	Version eas.Version
	Body    []byte
}

// Block returns what a blocked device gets (PROTOCOL.md §0.1, §1.7):
// OPTIONS is forwarded; otherwise protocol 14.0 and later get HTTP 200 with
// <Command><Status>129</Status></Command> in the command's namespace, and
// older protocols, and commands without an XML root (GetAttachment,
// legacy and unknown commands), a bare HTTP 403.
func Block(cmd eas.Command, v eas.Version) Answer {
	if cmd == eas.CmdOptions {
		return Answer{Forward: true, Outcome: "forward"}
	}
	status, body := eas.AppendErrorAnswer(nil, v, cmd, eas.StatusDeviceIsBlockedForThisUser, 403)
	return Answer{HTTPStatus: status, Body: body, Outcome: "blocked"}
}

// Per-command denials for a quarantined device (PROTOCOL.md §4.3). Commands
// with their own failure status get it in every protocol version (values
// below 100 are valid in all of them); the others get the common status
// AccessDenied (130) from 14.0 and a bare HTTP 403 before.
const (
	// FolderCreate/FolderUpdate/FolderDelete Status 6, "an error occurred
	// on the server": Exchange's Sync_ClientServerConversion error for
	// quarantined hierarchy changes. The folder is not created on the
	// server and the client does not retry the same request.
	folderDeniedStatus = 6
	// ItemOperations Status 3, "server error" (Exchange's quarantine
	// answer): nothing is fetched, moved or emptied.
	itemOperationsDeniedStatus = 3
	// ValidateCert Status 17, as Exchange answers quarantined devices.
	validateCertDeniedStatus = 17
)

// Deny returns the denial a quarantined device gets for a data command
// that is not emulated (SendMail, SmartReply, SmartForward, MoveItems,
// MeetingResponse, Search, ResolveRecipients, Find, ItemOperations,
// ValidateCert, FolderCreate/Update/Delete, GetAttachment, legacy and
// unknown commands). Mail the user sends is therefore not accepted and
// stays in the phone's Outbox.
func Deny(cmd eas.Command, v eas.Version) Answer {
	status := eas.StatusAccessDenied
	switch cmd {
	case eas.CmdFolderCreate, eas.CmdFolderUpdate, eas.CmdFolderDelete:
		status = folderDeniedStatus
	case eas.CmdItemOperations:
		status = itemOperationsDeniedStatus
	case eas.CmdValidateCert:
		status = validateCertDeniedStatus
	}
	code, body := eas.AppendErrorAnswer(nil, v, cmd, status, 403)
	return Answer{HTTPStatus: code, Body: body, Outcome: "denied"}
}

// malformed answers a request body easgate cannot read: the common status
// InvalidWBXML (102) from 14.0, HTTP 400 before.
func malformed(cmd eas.Command, v eas.Version) Answer {
	code, body := eas.AppendErrorAnswer(nil, v, cmd, eas.StatusInvalidWBXML, 400)
	return Answer{HTTPStatus: code, Body: body, Outcome: "malformed"}
}

func emulated(body []byte) Answer {
	return Answer{HTTPStatus: 200, Body: body, Outcome: "emulated"}
}

// Answer handles one request of a quarantined device d, entering it into
// quarantine first if it has no record yet (reason "" then). Protocol 2.5
// has no way to show a quarantine and gets the block answer, as does a
// request without a known protocol version (Exchange requires one).
//
//   - OPTIONS, Provision and Settings are forwarded (DeviceInformation
//     arrives there), except a Settings request that sets Oof or
//     DevicePassword: it gets "denied by policy" (see settings).
//   - FolderSync is forwarded, and the caller passes the CAS's answer to
//     LearnFolderSync. While the Inbox is not known, a FolderSync with a
//     SyncKey other than 0 is answered Status 9 (invalid sync key), so the
//     phone asks for the whole hierarchy and the Inbox can be learned.
//   - Sync, Ping and GetItemEstimate are answered by easgate.
//   - Every other command gets Deny.
func (e *Emulator) Answer(d Device, req Request) Answer {
	if req.Version < eas.V120 {
		return Block(req.Command, req.Version)
	}
	switch req.Command {
	case eas.CmdSettings:
		if a, ok := settings(req.Body); ok {
			return a
		}
		return Answer{Forward: true, Outcome: "forward"}
	case eas.CmdOptions, eas.CmdProvision:
		return Answer{Forward: true, Outcome: "forward"}
	case eas.CmdFolderSync, eas.CmdSync, eas.CmdPing, eas.CmdGetItemEstimate:
	default:
		return Deny(req.Command, req.Version)
	}
	en := e.lookup([]byte(d.User), []byte(d.DeviceID))
	if en == nil {
		e.Enter(d, "")
		if en = e.lookup([]byte(d.User), []byte(d.DeviceID)); en == nil {
			// Released between the two calls: the caller decides again.
			return Answer{Forward: true, Outcome: "forward"}
		}
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	var a Answer
	changed := false
	switch req.Command {
	case eas.CmdFolderSync:
		a, changed = e.folderSync(en, req)
	case eas.CmdSync:
		a, changed = e.sync(&en.rec, req)
	case eas.CmdPing:
		a, changed = e.ping(&en.rec, req)
	case eas.CmdGetItemEstimate:
		a, changed = e.estimate(&en.rec, req)
	}
	if changed {
		e.markDirty(string(keyBuf(nil, []byte(d.User), []byte(d.DeviceID))))
	}
	return a
}

func (e *Emulator) folderSync(en *entry, req Request) (Answer, bool) {
	var info eas.FolderSyncInfo
	if err := eas.ReadFolderSync(req.Body, &info); err != nil || info.SyncKey == "" {
		// No readable SyncKey: Exchange would reject it too; let it say
		// so in its own words.
		return Answer{Forward: true, Outcome: "forward"}, false
	}
	if info.SyncKey == "0" {
		en.fsZero = true
		return Answer{Forward: true, Outcome: "forward"}, false
	}
	if en.rec.InboxID == "" && !en.rec.HierarchyRead {
		// FolderSync Status 9: the client discards its hierarchy and sends
		// SyncKey 0 (MS-ASCMD §2.2.3.177.4), whose answer names the Inbox.
		b := eas.AppendFolderSyncResponse(nil, 9, "", nil)
		return emulated(b), false
	}
	return Answer{Forward: true, Outcome: "forward"}, false
}

// LearnFolderSync reads the CAS's answer to a forwarded FolderSync of a
// quarantined device and remembers the Inbox's ServerId. It reports
// whether the Inbox is known afterwards. Answers other than Status 1 teach
// nothing and are not an error.
func (e *Emulator) LearnFolderSync(user, device, body []byte) (bool, error) {
	en := e.lookup(user, device)
	if en == nil {
		return false, nil
	}
	var info eas.FolderSyncInfo
	err := eas.ReadFolderSync(body, &info)
	en.mu.Lock()
	defer en.mu.Unlock()
	zero := en.fsZero
	en.fsZero = false
	if err != nil {
		return en.rec.InboxID != "", err
	}
	if info.Status != 1 {
		return en.rec.InboxID != "", nil
	}
	changed := false
	if inbox, ok := info.Inbox(); ok && inbox.ServerID != en.rec.InboxID {
		en.rec.InboxID = inbox.ServerID
		en.rec.NoticeID = ""
		en.rec.NoticeDelivered = false
		changed = true
	}
	if (zero || en.rec.InboxID != "") && !en.rec.HierarchyRead {
		en.rec.HierarchyRead = true
		changed = true
	}
	if changed {
		e.markDirty(string(keyBuf(nil, user, device)))
	}
	return en.rec.InboxID != "", nil
}

// ping answers a Ping (MS-ASCMD §2.2.1.13): Status 2 with the Inbox while
// the notice is pending, Status 7 while the Inbox is not known (the phone
// then runs FolderSync), otherwise a hold for the heartbeat and Status 1.
func (e *Emulator) ping(r *Record, req Request) (Answer, bool) {
	var info eas.PingInfo
	if err := eas.ReadPing(req.Body, &info); err != nil {
		return emulated(pingStatus(eas.PingStatusSyntaxError, nil, 0, 0)), false
	}
	changed := false
	interval := info.HeartbeatInterval
	folders := make([]string, 0, len(info.Folders))
	for _, f := range info.Folders {
		folders = append(folders, f.ID)
	}
	if info.Empty || (interval == 0 && len(folders) == 0) {
		if r.PingInterval == 0 || len(r.PingFolders) == 0 {
			return emulated(pingStatus(eas.PingStatusMissingParams, nil, 0, 0)), false
		}
		interval, folders = r.PingInterval, r.PingFolders
	} else {
		if interval == 0 {
			interval = r.PingInterval
		}
		if len(folders) == 0 {
			folders = r.PingFolders
		}
		if interval == 0 || len(folders) == 0 {
			return emulated(pingStatus(eas.PingStatusMissingParams, nil, 0, 0)), false
		}
	}
	minHB, maxHB := int(e.opts.MinHeartbeat/time.Second), int(e.opts.MaxHeartbeat/time.Second)
	if interval < minHB {
		return emulated(pingStatus(eas.PingStatusBadInterval, nil, minHB, 0)), false
	}
	if interval > maxHB {
		return emulated(pingStatus(eas.PingStatusBadInterval, nil, maxHB, 0)), false
	}
	if len(folders) > e.opts.MaxPingFolders {
		return emulated(pingStatus(eas.PingStatusTooManyFolders, nil, 0, e.opts.MaxPingFolders)), false
	}
	if interval != r.PingInterval || !equalStrings(folders, r.PingFolders) {
		r.PingInterval, r.PingFolders = interval, append([]string(nil), folders...)
		changed = true
	}
	if r.InboxID == "" && !r.HierarchyRead {
		return emulated(pingStatus(eas.PingStatusHierarchyChange, nil, 0, 0)), changed
	}
	if r.NoticePending() && contains(folders, r.InboxID) {
		return emulated(pingStatus(eas.PingStatusChanges, []string{r.InboxID}, 0, 0)), changed
	}
	return Answer{
		HTTPStatus:  200,
		Body:        pingStatus(eas.PingStatusExpired, nil, 0, 0),
		Hold:        time.Duration(interval) * time.Second,
		ReleaseBody: pingStatus(eas.PingStatusChanges, folders, 0, 0),
		Outcome:     "hold",
	}, changed
}

// pingStatus builds a Ping response: Status, then Folders (Status 2),
// HeartbeatInterval (Status 5) or MaxFolders (Status 6).
func pingStatus(status int, folders []string, heartbeat, maxFolders int) []byte {
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.PingPing)
	e.Element(wbxml.PingStatus, strconv.Itoa(status))
	if status == eas.PingStatusChanges && len(folders) > 0 {
		e.Start(wbxml.PingFolders)
		for _, f := range folders {
			e.Element(wbxml.PingFolder, clean(f))
		}
		e.End()
	}
	if heartbeat > 0 {
		e.Element(wbxml.PingHeartbeatInterval, strconv.Itoa(heartbeat))
	}
	if maxFolders > 0 {
		e.Element(wbxml.PingMaxFolders, strconv.Itoa(maxFolders))
	}
	e.End()
	return e.Bytes()
}

// estimate answers GetItemEstimate (MS-ASCMD §2.2.1.9): per collection,
// Status 4 for a sync key easgate did not issue, Status 3 for SyncKey 0
// (the collection was never synced), otherwise the estimate: 1 for the
// Inbox while the notice has not reached the phone, 0 for everything else.
func (e *Emulator) estimate(r *Record, req Request) (Answer, bool) {
	var info eas.GetItemEstimateInfo
	if err := eas.ReadGetItemEstimate(req.Body, &info); err != nil || len(info.Collections) == 0 {
		// Collections > Collection is required (MS-ASCMD §2.2.1.9).
		return malformed(req.Command, req.Version), false
	}
	out := make([]eas.Estimate, 0, len(info.Collections))
	for _, c := range info.Collections {
		est := eas.Estimate{CollectionID: c.CollectionID}
		st := r.Collections[c.CollectionID]
		switch {
		case c.SyncKey == "0":
			est.Status = 3
		case st == nil || (c.SyncKey != st.Key && c.SyncKey != st.Prev):
			est.Status = 4
		default:
			est.Status = 1
			if c.CollectionID == r.InboxID && !r.NoticeDelivered && !(c.SyncKey == st.Key && st.NoticeInKey) {
				est.Count = 1
			}
		}
		out = append(out, est)
	}
	return emulated(eas.AppendGetItemEstimateResponse(nil, out)), false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
