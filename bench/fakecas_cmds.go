package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// Folder hierarchy served to every device (MS-ASCMD FolderSync Type values).
const (
	folderInbox     = "5"
	policyTypeWBXML = "MS-EAS-Provisioning-WBXML"
	maxPingFolders  = 300
	maxWindowSize   = 512
	defaultWindow   = 100
)

type fakeFolder struct {
	id, name string
	typ      int
}

var fakeFolders = []fakeFolder{
	{"1", "Calendar", 8},
	{"2", "Contacts", 9},
	{"3", "Deleted Items", 4},
	{"4", "Drafts", 3},
	{folderInbox, "Inbox", 2},
	{"6", "Outbox", 6},
	{"7", "Sent Items", 5},
}

func knownFolder(id string) bool {
	for _, f := range fakeFolders {
		if f.id == id {
			return true
		}
	}
	return false
}

// statusTags gives the root and Status element of each command that has a
// WBXML body, for common-status answers.
func statusTags(cmd eas.Command) (root, status wbxml.Tag, ok bool) {
	switch cmd {
	case eas.CmdSync:
		return wbxml.AirSyncSync, wbxml.AirSyncStatus, true
	case eas.CmdFolderSync:
		return wbxml.FolderHierarchyFolderSync, wbxml.FolderHierarchyStatus, true
	case eas.CmdPing:
		return wbxml.PingPing, wbxml.PingStatus, true
	case eas.CmdSettings:
		return wbxml.SettingsSettings, wbxml.SettingsStatus, true
	case eas.CmdProvision:
		return wbxml.ProvisionProvision, wbxml.ProvisionStatus, true
	case eas.CmdItemOperations:
		return wbxml.ItemOperationsItemOperations, wbxml.ItemOperationsStatus, true
	case eas.CmdSendMail:
		return wbxml.ComposeMailSendMail, wbxml.ComposeMailStatus, true
	case eas.CmdGetItemEstimate:
		return wbxml.ItemEstimateGetItemEstimate, wbxml.ItemEstimateStatus, true
	}
	return 0, 0, false
}

func statusBody(root, status wbxml.Tag, code int) []byte {
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(root)
	e.Element(status, strconv.Itoa(code))
	e.End()
	return e.Bytes()
}

// provisioned answers the Provision nudge (HTTP 449 up to 12.1, Status 142
// or 144 from 14.0) unless the request carries the device's policy key.
func (c *call) provisioned() bool {
	c.dev.mu.Lock()
	key := c.dev.policyKey
	c.dev.mu.Unlock()
	if key != 0 && c.r.HasPolicyKey && c.r.PolicyKey == key {
		return true
	}
	c.f.st.nudges.Add(1)
	code := 142 // DeviceNotProvisioned
	if c.r.HasPolicyKey && c.r.PolicyKey != 0 {
		code = 144 // InvalidPolicyKey
	}
	root, status, ok := statusTags(c.r.Command)
	if c.r.Version >= eas.V140 && ok && !(c.r.Command == eas.CmdSendMail && isRFC822(c.ctx)) {
		c.writeWBXML(statusBody(root, status, code))
		return false
	}
	c.ctx.SetStatusCode(449)
	c.ctx.Response.Header.SetStatusMessage([]byte("Retry after sending a PROVISION command"))
	return false
}

func isRFC822(ctx *fasthttp.RequestCtx) bool {
	ct := ctx.Request.Header.ContentType()
	return bytes.HasPrefix(bytes.ToLower(ct), []byte(ctRFC822))
}

func readDeviceInfo(set *node) eas.DeviceInfo {
	return eas.DeviceInfo{
		Model:             set.str(wbxml.SettingsModel),
		IMEI:              set.str(wbxml.SettingsIMEI),
		FriendlyName:      set.str(wbxml.SettingsFriendlyName),
		OS:                set.str(wbxml.SettingsOS),
		OSLanguage:        set.str(wbxml.SettingsOSLanguage),
		PhoneNumber:       set.str(wbxml.SettingsPhoneNumber),
		UserAgent:         set.str(wbxml.SettingsUserAgent),
		EnableOutboundSMS: set.str(wbxml.SettingsEnableOutboundSMS),
		MobileOperator:    set.str(wbxml.SettingsMobileOperator),
	}
}

// provision implements the two-phase flow of MS-ASPROV §3.2.5.1.
func (c *call) provision() {
	root := c.tree(wbxml.ProvisionProvision)
	if root == nil {
		return
	}
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.ProvisionProvision)
	if rw := root.child(wbxml.ProvisionRemoteWipe); rw != nil {
		// Wipe acknowledgement; this server never asks for a wipe.
		e.Element(wbxml.ProvisionStatus, "1")
		e.End()
		c.writeWBXML(e.Bytes())
		return
	}
	set := root.path(wbxml.SettingsDeviceInformation, wbxml.SettingsSet)
	policy := root.path(wbxml.ProvisionPolicies, wbxml.ProvisionPolicy)
	if policy == nil {
		e.Element(wbxml.ProvisionStatus, "2") // protocol error
		e.End()
		c.writeWBXML(e.Bytes())
		return
	}
	ptype := policy.str(wbxml.ProvisionPolicyType)
	d := c.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if set != nil {
		d.info = readDeviceInfo(set)
	}
	if ptype != policyTypeWBXML {
		e.Element(wbxml.ProvisionStatus, "1")
		e.Start(wbxml.ProvisionPolicies)
		e.Start(wbxml.ProvisionPolicy)
		e.Element(wbxml.ProvisionPolicyType, ptype)
		e.Element(wbxml.ProvisionStatus, "3") // unknown PolicyType
		e.End()
		e.End()
		e.End()
		c.writeWBXML(e.Bytes())
		return
	}
	if policy.has(wbxml.ProvisionPolicyKey) {
		// Phase 2: acknowledgement of the temporary key.
		key, err := strconv.ParseUint(policy.str(wbxml.ProvisionPolicyKey), 10, 32)
		ack, _ := policy.int(wbxml.ProvisionStatus)
		switch {
		case ack == 4:
			c.writeWBXML(statusBody(wbxml.ProvisionProvision, wbxml.ProvisionStatus, 145))
			return
		case ack != 1 && ack != 2:
			c.writeWBXML(statusBody(wbxml.ProvisionProvision, wbxml.ProvisionStatus, 139))
			return
		}
		e.Element(wbxml.ProvisionStatus, "1")
		e.Start(wbxml.ProvisionPolicies)
		e.Start(wbxml.ProvisionPolicy)
		e.Element(wbxml.ProvisionPolicyType, ptype)
		if err != nil || d.tempKey == 0 || uint32(key) != d.tempKey {
			e.Element(wbxml.ProvisionStatus, "5") // wrong key acknowledged
		} else {
			d.policyKey = newPolicyKey()
			d.tempKey = 0
			c.f.st.provision.Add(1)
			e.Element(wbxml.ProvisionStatus, "1")
			e.Element(wbxml.ProvisionPolicyKey, strconv.FormatUint(uint64(d.policyKey), 10))
		}
		e.End()
		e.End()
		e.End()
		c.writeWBXML(e.Bytes())
		return
	}
	// Phase 1: the initial request. 14.1 and later must carry
	// DeviceInformation (MS-ASPROV §2.2.2.53).
	if c.r.Version >= eas.V141 && set == nil {
		c.writeWBXML(statusBody(wbxml.ProvisionProvision, wbxml.ProvisionStatus, 165))
		return
	}
	d.tempKey = newPolicyKey()
	e.Element(wbxml.ProvisionStatus, "1")
	if set != nil {
		e.Start(wbxml.SettingsDeviceInformation)
		e.Element(wbxml.SettingsStatus, "1")
		e.End()
	}
	e.Start(wbxml.ProvisionPolicies)
	e.Start(wbxml.ProvisionPolicy)
	e.Element(wbxml.ProvisionPolicyType, ptype)
	e.Element(wbxml.ProvisionStatus, "1")
	e.Element(wbxml.ProvisionPolicyKey, strconv.FormatUint(uint64(d.tempKey), 10))
	e.Start(wbxml.ProvisionData)
	writeProvisionDoc(e, c.r.Version)
	e.End()
	e.End()
	e.End()
	e.End()
	c.writeWBXML(e.Bytes())
}

// writeProvisionDoc writes a permissive EASProvisionDoc like Exchange's
// Default policy (no password required).
func writeProvisionDoc(e *wbxml.Encoder, v eas.Version) {
	e.Start(wbxml.ProvisionEASProvisionDoc)
	el := func(t wbxml.Tag, s string) {
		if s == "" {
			e.Empty(t)
			return
		}
		e.Element(t, s)
	}
	el(wbxml.ProvisionDevicePasswordEnabled, "0")
	el(wbxml.ProvisionAlphanumericDevicePasswordRequired, "0")
	el(wbxml.ProvisionPasswordRecoveryEnabled, "0")
	el(wbxml.ProvisionRequireStorageCardEncryption, "0")
	el(wbxml.ProvisionAttachmentsEnabled, "1")
	el(wbxml.ProvisionMinDevicePasswordLength, "4")
	el(wbxml.ProvisionMaxInactivityTimeDeviceLock, "900")
	el(wbxml.ProvisionMaxDevicePasswordFailedAttempts, "8")
	el(wbxml.ProvisionMaxAttachmentSize, "")
	el(wbxml.ProvisionAllowSimpleDevicePassword, "1")
	el(wbxml.ProvisionDevicePasswordExpiration, "")
	el(wbxml.ProvisionDevicePasswordHistory, "0")
	if v >= eas.V121 {
		el(wbxml.ProvisionAllowStorageCard, "1")
		el(wbxml.ProvisionAllowCamera, "1")
		el(wbxml.ProvisionRequireDeviceEncryption, "0")
		el(wbxml.ProvisionAllowUnsignedApplications, "1")
		el(wbxml.ProvisionAllowUnsignedInstallationPackages, "1")
		el(wbxml.ProvisionMinDevicePasswordComplexCharacters, "3")
		el(wbxml.ProvisionAllowWiFi, "1")
		el(wbxml.ProvisionAllowTextMessaging, "1")
		el(wbxml.ProvisionAllowPOPIMAPEmail, "1")
		el(wbxml.ProvisionAllowBluetooth, "2")
		el(wbxml.ProvisionAllowIrDA, "1")
		el(wbxml.ProvisionRequireManualSyncWhenRoaming, "0")
		el(wbxml.ProvisionAllowDesktopSync, "1")
		el(wbxml.ProvisionMaxCalendarAgeFilter, "0")
		el(wbxml.ProvisionAllowHTMLEmail, "1")
		el(wbxml.ProvisionMaxEmailAgeFilter, "0")
		el(wbxml.ProvisionMaxEmailBodyTruncationSize, "-1")
		el(wbxml.ProvisionMaxEmailHTMLBodyTruncationSize, "-1")
		el(wbxml.ProvisionRequireSignedSMIMEMessages, "0")
		el(wbxml.ProvisionRequireEncryptedSMIMEMessages, "0")
		el(wbxml.ProvisionRequireSignedSMIMEAlgorithm, "0")
		el(wbxml.ProvisionRequireEncryptionSMIMEAlgorithm, "0")
		el(wbxml.ProvisionAllowSMIMEEncryptionAlgorithmNegotiation, "2")
		el(wbxml.ProvisionAllowSMIMESoftCerts, "1")
		el(wbxml.ProvisionAllowBrowser, "1")
		el(wbxml.ProvisionAllowConsumerEmail, "1")
		el(wbxml.ProvisionAllowRemoteDesktop, "1")
		el(wbxml.ProvisionAllowInternetSharing, "1")
		el(wbxml.ProvisionUnapprovedInROMApplicationList, "")
		el(wbxml.ProvisionApprovedApplicationList, "")
	}
	e.End()
}

func (c *call) address() string { return mailboxName(c.user) + "@example.com" }

// settings answers Oof, DeviceInformation, UserInformation and
// DevicePassword requests.
func (c *call) settings() {
	root := c.tree(wbxml.SettingsSettings)
	if root == nil {
		return
	}
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.SettingsSettings)
	e.Element(wbxml.SettingsStatus, "1")
	for _, k := range root.kids {
		switch k.tag {
		case wbxml.SettingsOof:
			e.Start(wbxml.SettingsOof)
			e.Element(wbxml.SettingsStatus, "1")
			if k.has(wbxml.SettingsGet) {
				e.Start(wbxml.SettingsGet)
				e.Element(wbxml.SettingsOofState, "0")
				e.End()
			}
			e.End()
		case wbxml.SettingsDeviceInformation:
			if set := k.child(wbxml.SettingsSet); set != nil {
				info := readDeviceInfo(set)
				c.dev.mu.Lock()
				c.dev.info = info
				c.dev.mu.Unlock()
			}
			e.Start(wbxml.SettingsDeviceInformation)
			e.Element(wbxml.SettingsStatus, "1")
			e.End()
		case wbxml.SettingsUserInformation:
			e.Start(wbxml.SettingsUserInformation)
			e.Element(wbxml.SettingsStatus, "1")
			e.Start(wbxml.SettingsGet)
			if c.r.Version >= eas.V141 {
				e.Start(wbxml.SettingsAccounts)
				e.Start(wbxml.SettingsAccount)
				e.Element(wbxml.SettingsUserDisplayName, mailboxName(c.user))
				e.Start(wbxml.SettingsEmailAddresses)
				e.Element(wbxml.SettingsPrimarySmtpAddress, c.address())
				e.End()
				e.End()
				e.End()
			} else {
				e.Start(wbxml.SettingsEmailAddresses)
				e.Element(wbxml.SettingsSmtpAddress, c.address())
				e.End()
			}
			e.End()
			e.End()
		case wbxml.SettingsDevicePassword:
			e.Start(wbxml.SettingsDevicePassword)
			e.Element(wbxml.SettingsStatus, "1")
			e.End()
		}
	}
	e.End()
	c.writeWBXML(e.Bytes())
}

// folderSync serves the fixed hierarchy; SyncKey 0 resets every item sync
// state of the device, as on Exchange.
func (c *call) folderSync() {
	root := c.tree(wbxml.FolderHierarchyFolderSync)
	if root == nil {
		return
	}
	key := root.str(wbxml.FolderHierarchySyncKey)
	d := c.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.FolderHierarchyFolderSync)
	switch {
	case key == "0":
		d.folderKey = 1
		d.cols = make(map[string]*colState)
		d.lastSync = nil
		d.pingIDs = nil
		e.Element(wbxml.FolderHierarchyStatus, "1")
		e.Element(wbxml.FolderHierarchySyncKey, "1")
		e.Start(wbxml.FolderHierarchyChanges)
		e.Element(wbxml.FolderHierarchyCount, strconv.Itoa(len(fakeFolders)))
		for _, f := range fakeFolders {
			e.Start(wbxml.FolderHierarchyAdd)
			e.Element(wbxml.FolderHierarchyServerId, f.id)
			e.Element(wbxml.FolderHierarchyParentId, "0")
			e.Element(wbxml.FolderHierarchyDisplayName, f.name)
			e.Element(wbxml.FolderHierarchyType, strconv.Itoa(f.typ))
			e.End()
		}
		e.End()
	case d.folderKey > 0 && key == strconv.Itoa(d.folderKey):
		e.Element(wbxml.FolderHierarchyStatus, "1")
		e.Element(wbxml.FolderHierarchySyncKey, key)
		e.Start(wbxml.FolderHierarchyChanges)
		e.Element(wbxml.FolderHierarchyCount, "0")
		e.End()
	default:
		e.Element(wbxml.FolderHierarchyStatus, "9") // invalid synchronization key
	}
	e.End()
	c.writeWBXML(e.Bytes())
}

// syncReqCol is one collection of a Sync request (also cached for empty
// Sync requests).
type syncReqCol struct {
	id, key    string
	getChanges bool
	window     int
	bodyType   int
	truncation int
}

type syncResult struct {
	col      syncReqCol
	status   int
	key      string
	from, to int // items from+1..to are sent
	more     bool
}

func (c *call) syncTopStatus(code int, limit int) {
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Element(wbxml.AirSyncStatus, strconv.Itoa(code))
	if limit > 0 {
		e.Element(wbxml.AirSyncLimit, strconv.Itoa(limit))
	}
	e.End()
	c.writeWBXML(e.Bytes())
}

func parseSyncCols(root *node, defWindow int) []syncReqCol {
	var cols []syncReqCol
	for _, cn := range root.path(wbxml.AirSyncCollections).children(wbxml.AirSyncCollection) {
		col := syncReqCol{
			id:       cn.str(wbxml.AirSyncCollectionId),
			key:      cn.str(wbxml.AirSyncSyncKey),
			window:   defWindow,
			bodyType: 1,
		}
		if gc := cn.child(wbxml.AirSyncGetChanges); gc != nil {
			col.getChanges = len(gc.text) == 0 || string(gc.text) == "1"
		} else {
			// 14.0+: GetChanges defaults to true for a non-zero key.
			col.getChanges = col.key != "0"
		}
		if w, ok := cn.int(wbxml.AirSyncWindowSize); ok {
			col.window = w
		}
		if col.window <= 0 || col.window > maxWindowSize {
			col.window = maxWindowSize
		}
		if bp := cn.path(wbxml.AirSyncOptions, wbxml.AirSyncBaseBodyPreference); bp != nil {
			if t, ok := bp.int(wbxml.AirSyncBaseType); ok {
				col.bodyType = t
			}
			if t, ok := bp.int(wbxml.AirSyncBaseTruncationSize); ok {
				col.truncation = t
			}
		}
		cols = append(cols, col)
	}
	return cols
}

// sync answers Sync, holding the request when it carries Wait or
// HeartbeatInterval and nothing has changed.
func (c *call) sync() {
	d := c.dev
	var cols []syncReqCol
	var hold time.Duration
	if len(c.body) == 0 {
		// Empty Sync request: repeat the cached one (MS-ASCMD §2.2.1.21.1).
		d.mu.Lock()
		cols, hold = d.lastSync, d.lastWait
		d.mu.Unlock()
		if cols == nil {
			c.syncTopStatus(13, 0) // empty request, nothing cached
			return
		}
	} else {
		root := c.tree(wbxml.AirSyncSync)
		if root == nil {
			return
		}
		wait, hasWait := root.int(wbxml.AirSyncWait)
		hb, hasHB := root.int(wbxml.AirSyncHeartbeatInterval)
		switch {
		case root.has(wbxml.AirSyncWait) && root.has(wbxml.AirSyncHeartbeatInterval):
			c.syncTopStatus(4, 0)
			return
		case root.has(wbxml.AirSyncWait) && !hasWait, root.has(wbxml.AirSyncHeartbeatInterval) && !hasHB:
			c.syncTopStatus(4, 0)
			return
		case hasWait && (wait < 1 || wait > 59):
			c.syncTopStatus(14, clamp(wait, 1, 59))
			return
		case hasHB && (time.Duration(hb)*time.Second < c.f.cfg.MinHeartbeat || time.Duration(hb)*time.Second > c.f.cfg.MaxHeartbeat):
			c.syncTopStatus(14, clamp(hb, int(c.f.cfg.MinHeartbeat/time.Second), int(c.f.cfg.MaxHeartbeat/time.Second)))
			return
		case hasWait:
			hold = time.Duration(wait) * time.Minute
		case hasHB:
			hold = time.Duration(hb) * time.Second
		}
		defWindow := defaultWindow
		if w, ok := root.int(wbxml.AirSyncWindowSize); ok && w > 0 {
			defWindow = min(w, maxWindowSize)
		}
		cols = parseSyncCols(root, defWindow)
		d.mu.Lock()
		if root.has(wbxml.AirSyncPartial) && d.lastSync != nil {
			cols = mergeCols(d.lastSync, cols)
		}
		if len(cols) == 0 {
			cols = d.lastSync
		}
		if cols != nil {
			d.lastSync, d.lastWait = cols, hold
		}
		d.mu.Unlock()
		if len(cols) == 0 {
			c.syncTopStatus(13, 0)
			return
		}
	}

	var deadline <-chan time.Time
	if hold > 0 {
		t := time.NewTimer(c.f.scaled(hold))
		defer t.Stop()
		deadline = t.C
	}
	held := false
	defer func() {
		if held {
			c.f.st.heldSyncs.Add(-1)
		}
	}()
	for {
		count, wake := c.mbox.snapshot()
		results, respond := c.syncCompute(cols, count)
		if respond || hold == 0 {
			if !respond && c.r.Version >= eas.V121 {
				c.ctx.SetStatusCode(fasthttp.StatusOK) // empty Sync response
				return
			}
			c.writeWBXML(c.syncEncode(results))
			return
		}
		if !held {
			held = true
			c.f.st.heldSyncs.Add(1)
		}
		select {
		case <-wake:
		case <-deadline:
			c.ctx.SetStatusCode(fasthttp.StatusOK)
			return
		case <-c.f.closing:
			c.ctx.SetStatusCode(fasthttp.StatusOK)
			return
		}
	}
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

func mergeCols(cached, partial []syncReqCol) []syncReqCol {
	out := append([]syncReqCol(nil), cached...)
	for _, p := range partial {
		replaced := false
		for i := range out {
			if out[i].id == p.id {
				out[i] = p
				replaced = true
			}
		}
		if !replaced {
			out = append(out, p)
		}
	}
	return out
}

// syncCompute advances the device's sync state for cols against an Inbox of
// count messages. respond is false when nothing changed (and nothing failed).
func (c *call) syncCompute(cols []syncReqCol, count int) (res []syncResult, respond bool) {
	d := c.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	res = make([]syncResult, len(cols))
	for i, col := range cols {
		r := syncResult{col: col, status: 1, key: col.key}
		switch {
		case !knownFolder(col.id):
			r.status = 8 // object not found
			if d.folderKey == 0 {
				r.status = 12 // hierarchy changed: FolderSync first
			}
			respond = true
		case col.key == "0":
			d.cols[col.id] = &colState{key: 1}
			r.key = "1"
			respond = true
		default:
			st := d.cols[col.id]
			k, err := strconv.Atoi(col.key)
			switch {
			case st == nil || err != nil:
				r.status = 3 // invalid sync key
				respond = true
			case k == st.key:
			case k == st.prevKey && st.prevKey != 0:
				st.key, st.pos = st.prevKey, st.prevPos // the last response was lost
			default:
				r.status = 3
				respond = true
			}
			if r.status != 1 {
				break
			}
			avail := 0
			if col.id == folderInbox {
				avail = count - st.pos
			}
			if col.getChanges && avail > 0 {
				n := min(avail, col.window)
				r.from, r.to, r.more = st.pos, st.pos+n, avail > n
				st.prevKey, st.prevPos = st.key, st.pos
				st.key++
				st.pos += n
				respond = true
			}
			r.key = strconv.Itoa(st.key)
		}
		res[i] = r
	}
	return res, respond
}

func (c *call) syncEncode(res []syncResult) []byte {
	e := wbxml.NewEncoder(make([]byte, 0, 1024))
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	for _, r := range res {
		e.Start(wbxml.AirSyncCollection)
		if c.r.Version <= eas.V121 {
			e.Element(wbxml.AirSyncClass, "Email")
		}
		if r.status == 1 {
			e.Element(wbxml.AirSyncSyncKey, r.key)
		} else {
			e.Element(wbxml.AirSyncSyncKey, "0")
		}
		e.Element(wbxml.AirSyncCollectionId, r.col.id)
		e.Element(wbxml.AirSyncStatus, strconv.Itoa(r.status))
		if r.more {
			e.Empty(wbxml.AirSyncMoreAvailable)
		}
		if r.to > r.from {
			e.Start(wbxml.AirSyncCommands)
			for n := r.from + 1; n <= r.to; n++ {
				m := c.f.message(mailboxName(c.user), n)
				e.Start(wbxml.AirSyncAdd)
				e.Element(wbxml.AirSyncServerId, m.ServerID)
				e.Start(wbxml.AirSyncApplicationData)
				c.writeEmail(e, m, r.col.bodyType, r.col.truncation)
				e.End()
				e.End()
			}
			e.End()
		}
		e.End()
	}
	e.End()
	e.End()
	return e.Bytes()
}

// messageBody renders a generated message body in the requested
// AirSyncBase body type (1 text, 2 HTML, 4 MIME).
func messageBody(m genMessage, user string, bodyType int) []byte {
	text := genBytes("body/"+user+"/"+strconv.Itoa(m.N), m.BodySize, true)
	switch bodyType {
	case 2:
		var b bytes.Buffer
		b.WriteString("<html><body><pre>")
		b.Write(text)
		b.WriteString("</pre></body></html>")
		return b.Bytes()
	case 4:
		var b bytes.Buffer
		b.WriteString("From: " + m.From + "\r\nTo: " + m.To + "\r\nSubject: " + m.Subject + "\r\n")
		b.WriteString("Date: " + m.Date.Format(time.RFC1123Z) + "\r\nMIME-Version: 1.0\r\n")
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
		b.Write(text)
		return b.Bytes()
	}
	return text
}

// writeEmail writes an Email item's ApplicationData/Properties children
// (MS-ASEMAIL element order).
func (c *call) writeEmail(e *wbxml.Encoder, m genMessage, bodyType, truncation int) {
	e.Element(wbxml.EmailTo, m.To)
	e.Element(wbxml.EmailFrom, m.From)
	e.Element(wbxml.EmailSubject, m.Subject)
	e.Element(wbxml.EmailDateReceived, m.Date.Format("2006-01-02T15:04:05.000Z"))
	e.Element(wbxml.EmailDisplayTo, mailboxName(c.user))
	e.Element(wbxml.EmailImportance, "1")
	e.Element(wbxml.EmailRead, "0")
	if m.Attachment {
		e.Start(wbxml.AirSyncBaseAttachments)
		e.Start(wbxml.AirSyncBaseAttachment)
		e.Element(wbxml.AirSyncBaseDisplayName, m.AttachName)
		e.Element(wbxml.AirSyncBaseFileReference, m.AttachRef)
		e.Element(wbxml.AirSyncBaseMethod, "1")
		e.Element(wbxml.AirSyncBaseEstimatedDataSize, strconv.Itoa(m.AttachSize))
		e.End()
		e.End()
	}
	if bodyType != 1 && bodyType != 2 && bodyType != 4 {
		bodyType = 1
	}
	data := messageBody(m, mailboxName(c.user), bodyType)
	e.Start(wbxml.AirSyncBaseBody)
	e.Element(wbxml.AirSyncBaseType, strconv.Itoa(bodyType))
	e.Element(wbxml.AirSyncBaseEstimatedDataSize, strconv.Itoa(len(data)))
	if truncation > 0 && len(data) > truncation {
		data = data[:truncation]
		e.Element(wbxml.AirSyncBaseTruncated, "1")
	}
	e.Start(wbxml.AirSyncBaseData)
	e.Text(data)
	e.End()
	e.End()
	e.Element(wbxml.EmailMessageClass, "IPM.Note")
	e.Element(wbxml.EmailInternetCPID, "65001")
	e.Element(wbxml.EmailContentClass, "urn:content-classes:message")
	e.Element(wbxml.AirSyncBaseNativeBodyType, "1")
}

// changedFolders lists the pinged folders with changes the device has not
// synced (only the Inbox receives mail).
func (c *call) changedFolders(ids []string, count int) []string {
	d := c.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, id := range ids {
		if id != folderInbox {
			continue
		}
		pos := 0
		if st := d.cols[id]; st != nil {
			pos = st.pos
		}
		if count > pos {
			out = append(out, id)
		}
	}
	return out
}

func (c *call) pingAnswer(status int, build func(e *wbxml.Encoder)) {
	if status >= 0 && status < len(c.f.st.ping) {
		c.f.st.ping[status].Add(1)
	}
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.PingPing)
	e.Element(wbxml.PingStatus, strconv.Itoa(status))
	if build != nil {
		build(e)
	}
	e.End()
	c.writeWBXML(e.Bytes())
}

// ping is Direct Push: it holds the request for the heartbeat (scaled by
// TimeScale) and answers Status 1 at expiry or Status 2 with the changed
// folders as soon as mail arrives.
func (c *call) ping() {
	d := c.dev
	var ids []string
	hb := 0
	if len(c.body) > 0 {
		root := c.tree(wbxml.PingPing)
		if root == nil {
			return
		}
		if v, ok := root.int(wbxml.PingHeartbeatInterval); ok {
			hb = v
		} else if root.has(wbxml.PingHeartbeatInterval) {
			c.pingAnswer(4, nil) // syntax error
			return
		}
		for _, fn := range root.path(wbxml.PingFolders).children(wbxml.PingFolder) {
			ids = append(ids, fn.str(wbxml.PingId))
		}
	}
	d.mu.Lock()
	if hb == 0 {
		hb = d.pingBeat
	}
	if ids == nil {
		ids = d.pingIDs
	}
	folderKey := d.folderKey
	d.mu.Unlock()
	if hb == 0 || len(ids) == 0 {
		c.pingAnswer(3, nil) // missing parameters
		return
	}
	minHB, maxHB := int(c.f.cfg.MinHeartbeat/time.Second), int(c.f.cfg.MaxHeartbeat/time.Second)
	if hb < minHB || hb > maxHB {
		limit := clamp(hb, minHB, maxHB)
		c.pingAnswer(5, func(e *wbxml.Encoder) { e.Element(wbxml.PingHeartbeatInterval, strconv.Itoa(limit)) })
		return
	}
	if len(ids) > maxPingFolders {
		c.pingAnswer(6, func(e *wbxml.Encoder) { e.Element(wbxml.PingMaxFolders, strconv.Itoa(maxPingFolders)) })
		return
	}
	for _, id := range ids {
		if folderKey == 0 || !knownFolder(id) {
			c.pingAnswer(7, nil) // folder hierarchy changed: FolderSync
			return
		}
	}
	d.mu.Lock()
	d.pingBeat, d.pingIDs = hb, ids
	d.mu.Unlock()

	t := time.NewTimer(c.f.scaled(time.Duration(hb) * time.Second))
	defer t.Stop()
	held := false
	defer func() {
		if held {
			c.f.st.heldPings.Add(-1)
		}
	}()
	for {
		count, wake := c.mbox.snapshot()
		if changed := c.changedFolders(ids, count); len(changed) > 0 {
			c.pingAnswer(2, func(e *wbxml.Encoder) {
				e.Start(wbxml.PingFolders)
				for _, id := range changed {
					e.Element(wbxml.PingFolder, id)
				}
				e.End()
			})
			return
		}
		if !held {
			held = true
			n := c.f.st.heldPings.Add(1)
			for {
				m := c.f.st.maxHeld.Load()
				if n <= m || c.f.st.maxHeld.CompareAndSwap(m, n) {
					break
				}
			}
		}
		select {
		case <-wake:
		case <-t.C:
			c.pingAnswer(1, nil)
			return
		case <-c.f.closing:
			c.pingAnswer(1, nil)
			return
		}
	}
}

// attachment resolves a FileReference / AttachmentName ("5:<n>:0").
func (c *call) attachment(ref string) (genMessage, bool) {
	parts := strings.Split(ref, ":")
	if len(parts) != 3 || parts[0] != folderInbox || parts[2] != "0" {
		return genMessage{}, false
	}
	n, err := strconv.Atoi(parts[1])
	count, _ := c.mbox.snapshot()
	if err != nil || n < 1 || n > count {
		return genMessage{}, false
	}
	m := c.f.message(mailboxName(c.user), n)
	return m, m.Attachment && m.AttachRef == ref
}

// attachmentReader streams the content of an attachment.
func attachmentReader(ref string, size int) io.Reader {
	return newGenReader("att/"+ref, int64(size), false)
}

// countingReader counts bytes streamed to the client.
type countingReader struct {
	r io.Reader
	f *FakeCAS
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.f.st.attachment.Add(int64(n))
	return n, err
}

// getAttachment is the ≤12.1 attachment download: the raw bytes.
func (c *call) getAttachment() {
	m, ok := c.attachment(string(c.r.AttachmentName))
	if !ok {
		c.ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	c.ctx.SetStatusCode(fasthttp.StatusOK)
	c.ctx.SetContentType("application/octet-stream")
	c.f.st.bytesOut.Add(int64(m.AttachSize))
	c.ctx.SetBodyStream(countingReader{r: attachmentReader(m.AttachRef, m.AttachSize), f: c.f}, m.AttachSize)
}

// fetchPart is one attachment to stream inside an ItemOperations answer.
type fetchPart struct {
	ref  string
	size int
	at   int // inline: offset in the WBXML just after STR_I's 0x03
}

// itemOperations answers Fetch of attachments (AirSyncBase FileReference)
// and of mail items (CollectionId + ServerId), inline (base64 Data) or
// multipart (MS-ASAcceptMultiPart). Attachments are streamed.
func (c *call) itemOperations() {
	root := c.tree(wbxml.ItemOperationsItemOperations)
	if root == nil {
		return
	}
	multipart := c.r.AcceptMultiPart
	e := wbxml.NewEncoder(make([]byte, 0, 512))
	e.Header()
	e.Start(wbxml.ItemOperationsItemOperations)
	e.Element(wbxml.ItemOperationsStatus, "1")
	e.Start(wbxml.ItemOperationsResponse)
	var parts []fetchPart
	for _, k := range root.kids {
		if k.tag != wbxml.ItemOperationsFetch {
			continue // EmptyFolderContents / Move are not modelled
		}
		e.Start(wbxml.ItemOperationsFetch)
		if ref := k.str(wbxml.AirSyncBaseFileReference); ref != "" {
			m, ok := c.attachment(ref)
			if !ok {
				e.Element(wbxml.ItemOperationsStatus, "15") // attachment id invalid
				e.Element(wbxml.AirSyncBaseFileReference, ref)
				e.End()
				continue
			}
			e.Element(wbxml.ItemOperationsStatus, "1")
			e.Element(wbxml.AirSyncBaseFileReference, ref)
			e.Start(wbxml.ItemOperationsProperties)
			e.Element(wbxml.AirSyncBaseContentType, "application/octet-stream")
			if multipart {
				e.Element(wbxml.ItemOperationsPart, strconv.Itoa(len(parts)+1))
				parts = append(parts, fetchPart{ref: ref, size: m.AttachSize})
			} else {
				e.Start(wbxml.ItemOperationsData)
				e.String("")
				b := e.Bytes()
				parts = append(parts, fetchPart{ref: ref, size: m.AttachSize, at: len(b) - 1})
				e.End()
			}
			e.End()
			e.End()
			continue
		}
		colID, srvID := k.str(wbxml.AirSyncCollectionId), k.str(wbxml.AirSyncServerId)
		n := 0
		if colID == folderInbox && strings.HasPrefix(srvID, folderInbox+":") {
			n, _ = strconv.Atoi(srvID[len(folderInbox)+1:])
		}
		count, _ := c.mbox.snapshot()
		if n < 1 || n > count {
			e.Element(wbxml.ItemOperationsStatus, "6") // object not found
			e.End()
			continue
		}
		bodyType := 1
		if t, ok := k.path(wbxml.ItemOperationsOptions, wbxml.AirSyncBaseBodyPreference).int(wbxml.AirSyncBaseType); ok {
			bodyType = t
		}
		e.Element(wbxml.ItemOperationsStatus, "1")
		e.Element(wbxml.AirSyncCollectionId, colID)
		e.Element(wbxml.AirSyncServerId, srvID)
		e.Element(wbxml.AirSyncClass, "Email")
		e.Start(wbxml.ItemOperationsProperties)
		c.writeEmail(e, c.f.message(mailboxName(c.user), n), bodyType, 0)
		e.End()
		e.End()
	}
	e.End()
	e.End()
	if err := e.Err(); err != nil {
		c.f.badRequest(c.ctx, err.Error())
		return
	}
	doc := e.Bytes()
	c.ctx.SetStatusCode(fasthttp.StatusOK)
	if multipart {
		c.multipart(doc, parts)
		return
	}
	if len(parts) == 0 {
		c.writeWBXML(doc)
		return
	}
	// Inline: splice a streamed base64 encoding into each empty STR_I.
	var readers []io.Reader
	total, last := 0, 0
	for _, p := range parts {
		readers = append(readers, bytes.NewReader(doc[last:p.at]))
		total += p.at - last
		readers = append(readers, &base64Reader{src: countingReader{r: attachmentReader(p.ref, p.size), f: c.f}})
		total += base64.StdEncoding.EncodedLen(p.size)
		last = p.at
	}
	readers = append(readers, bytes.NewReader(doc[last:]))
	total += len(doc) - last
	c.ctx.SetContentType(ctWBXML)
	c.f.st.bytesOut.Add(int64(total))
	c.ctx.SetBodyStream(io.MultiReader(readers...), total)
}

// multipart writes an application/vnd.ms-sync.multipart body: part count,
// (offset, length) pairs, then the WBXML part and the raw attachments.
func (c *call) multipart(doc []byte, parts []fetchPart) {
	n := 1 + len(parts)
	hdr := make([]byte, 4+8*n)
	binary.LittleEndian.PutUint32(hdr, uint32(n))
	off := len(hdr)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(off))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(doc)))
	off += len(doc)
	readers := []io.Reader{bytes.NewReader(hdr), bytes.NewReader(doc)}
	for i, p := range parts {
		binary.LittleEndian.PutUint32(hdr[4+8*(i+1):], uint32(off))
		binary.LittleEndian.PutUint32(hdr[8+8*(i+1):], uint32(p.size))
		off += p.size
		readers = append(readers, countingReader{r: attachmentReader(p.ref, p.size), f: c.f})
	}
	c.ctx.SetContentType(ctMultipart)
	c.f.st.bytesOut.Add(int64(off))
	c.ctx.SetBodyStream(io.MultiReader(readers...), off)
}

// validMIME checks that a message has a header block with at least one
// header field before the body.
func validMIME(b []byte) bool {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		end = bytes.Index(b, []byte("\n\n"))
	}
	if end <= 0 {
		return false
	}
	first, _, _ := bytes.Cut(b[:end], []byte("\n"))
	i := bytes.IndexByte(first, ':')
	return i > 0 && bytes.IndexByte(first[:i], ' ') < 0
}

// sendMail accepts 14.0+ ComposeMail WBXML and ≤12.1 message/rfc822 bodies.
func (c *call) sendMail() {
	var mime []byte
	saveInSent := c.r.SaveInSent
	if isRFC822(c.ctx) {
		mime = c.body
		if !validMIME(mime) {
			c.f.badRequest(c.ctx, "SendMail: body is not a MIME message")
			return
		}
	} else {
		root := c.tree(wbxml.ComposeMailSendMail)
		if root == nil {
			return
		}
		mn := root.child(wbxml.ComposeMailMime)
		if mn == nil || !validMIME(mn.text) || root.str(wbxml.ComposeMailClientId) == "" {
			c.writeWBXML(statusBody(wbxml.ComposeMailSendMail, wbxml.ComposeMailStatus, 107)) // InvalidMIME
			return
		}
		mime = mn.text
		saveInSent = root.has(wbxml.ComposeMailSaveInSentItems)
	}
	c.f.st.sendMail.Add(1)
	c.f.st.sendBytes.Add(int64(len(mime)))
	if saveInSent {
		c.mbox.mu.Lock()
		c.mbox.sent++
		c.mbox.mu.Unlock()
	}
	c.ctx.SetStatusCode(fasthttp.StatusOK) // success: empty body
}

// getItemEstimate reports the number of unsynced items per collection.
func (c *call) getItemEstimate() {
	root := c.tree(wbxml.ItemEstimateGetItemEstimate)
	if root == nil {
		return
	}
	count, _ := c.mbox.snapshot()
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.ItemEstimateGetItemEstimate)
	d := c.dev
	d.mu.Lock()
	for _, cn := range root.path(wbxml.ItemEstimateCollections).children(wbxml.ItemEstimateCollection) {
		id := cn.str(wbxml.ItemEstimateCollectionId)
		key := cn.str(wbxml.AirSyncSyncKey)
		e.Start(wbxml.ItemEstimateResponse)
		st := d.cols[id]
		switch {
		case !knownFolder(id):
			e.Element(wbxml.ItemEstimateStatus, "2") // collection invalid
		case st == nil || (key != "" && key != strconv.Itoa(st.key)):
			e.Element(wbxml.ItemEstimateStatus, "4") // invalid sync key
		default:
			est := 0
			if id == folderInbox {
				est = count - st.pos
			}
			e.Element(wbxml.ItemEstimateStatus, "1")
			e.Start(wbxml.ItemEstimateCollection)
			e.Element(wbxml.ItemEstimateCollectionId, id)
			e.Element(wbxml.ItemEstimateEstimate, strconv.Itoa(est))
			e.End()
		}
		e.End()
	}
	d.mu.Unlock()
	e.End()
	c.writeWBXML(e.Bytes())
}
