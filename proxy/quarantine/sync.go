package quarantine

import (
	"encoding/base64"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// Sync status values (MS-ASCMD §2.2.3.177.17) the emulation uses.
const (
	syncOK              = 1
	syncInvalidKey      = 3  // the client returns to SyncKey 0
	syncProtocolError   = 4  // malformed request, Wait and HeartbeatInterval both sent
	syncConversionError = 6  // per item: not saved, do not retry
	syncNotFound        = 8  // per item: no such object
	syncHierarchyChange = 12 // run FolderSync first
	syncIncomplete      = 13 // empty/partial request with nothing cached
	syncBadWait         = 14 // Wait/HeartbeatInterval out of range; Limit follows
)

// Why client changes get Status 6. A quarantined phone's changes must never
// be acknowledged as saved (nothing reaches the real mailbox, and the phone
// must not believe it did). MS-ASCMD's per-item statuses: 1 would claim
// success; 5 (server error) and 16 (retry) make the client resend the same
// change in a loop; 7 (conflict) tells the client the server's version
// wins, so it drops its change; 8 (object not found) makes it drop the
// item. Status 6, "error in client/server conversion", says the server did
// not take the item and the client should not retry it — the change stays
// on the phone, unsynced. It is also the status Exchange itself uses for
// quarantined changes (Sync_ClientServerConversion). Changes and deletes of
// the notice itself are the exception: the notice is easgate's own item,
// so marking it read or deleting it succeeds (no Responses entry, as
// MS-ASCMD specifies for successful Change and Delete). Fetch of the notice
// returns it; Fetch of anything else gets 8.

type respItem struct {
	kind   wbxml.Tag // AirSyncAdd, AirSyncChange, AirSyncDelete, AirSyncFetch
	id     string    // ClientId for Add, ServerId otherwise
	class  string
	status int
	fetch  bool // a Fetch of the notice: write ApplicationData
}

type respCol struct {
	class, key, id string
	status         int
	notice         bool
	responses      []respItem
	bodyType       int
}

// sync answers a Sync request with easgate's own sync keys (see the package
// doc and the comment above about client changes).
func (e *Emulator) sync(r *Record, req Request) (Answer, bool) {
	var sr eas.SyncInfo
	if err := eas.ReadSync(req.Body, &sr); err != nil || (sr.HasWait && sr.HasHeartbeatInterval) {
		return emulated(syncTop(syncProtocolError, 0)), false
	}
	minHB, maxHB := int(e.opts.MinHeartbeat/time.Second), int(e.opts.MaxHeartbeat/time.Second)
	hold := 0
	switch {
	case sr.HasWait:
		minW, maxW := (minHB+59)/60, maxHB/60
		if minW < 1 {
			minW = 1
		}
		if sr.Wait < minW {
			return emulated(syncTop(syncBadWait, minW)), false
		}
		if sr.Wait > maxW {
			return emulated(syncTop(syncBadWait, maxW)), false
		}
		hold = sr.Wait * 60
	case sr.HasHeartbeatInterval:
		if sr.HeartbeatInterval < minHB {
			return emulated(syncTop(syncBadWait, minHB)), false
		}
		if sr.HeartbeatInterval > maxHB {
			return emulated(syncTop(syncBadWait, maxHB)), false
		}
		hold = sr.HeartbeatInterval
	}
	changed := false
	// sr is this call's own: the cache may keep its BodyTypes slices.
	cols := sr.Collections
	switch {
	case sr.Empty:
		if len(r.LastSync) == 0 {
			return emulated(syncTop(syncIncomplete, 0)), false
		}
		cols = r.cachedCols(nil)
		hold = r.LastSyncHold
	case sr.Partial:
		if len(r.LastSync) == 0 && len(cols) == 0 {
			return emulated(syncTop(syncIncomplete, 0)), false
		}
		cols = r.cachedCols(cols)
		if !sr.HasWait && !sr.HasHeartbeatInterval {
			hold = r.LastSyncHold
		}
	default:
		r.LastSync = r.LastSync[:0]
		for _, c := range cols {
			r.LastSync = append(r.LastSync, cachedCol{ID: c.CollectionID, Class: c.Class, BodyTypes: c.BodyTypes,
				GetChanges: storeGetChanges(c.GetChanges)})
		}
		r.LastSyncHold = hold
		changed = true
	}
	if r.InboxID == "" && !r.HierarchyRead {
		return emulated(syncTop(syncHierarchyChange, 0)), changed
	}

	var out []respCol
	for i := range cols {
		c := &cols[i]
		rc, ok, ch := e.syncCollection(r, c)
		changed = changed || ch
		if ok {
			if req.Version < eas.V140 {
				rc.class = c.Class
			}
			out = append(out, rc)
		}
	}
	if len(out) == 0 {
		// Nothing to report: an empty Sync response (MS-ASCMD
		// §2.2.1.21.2), after the Wait/HeartbeatInterval if one was asked.
		a := Answer{HTTPStatus: 200, Outcome: "emulated"}
		if hold > 0 {
			a.Hold, a.Outcome = time.Duration(hold)*time.Second, "hold"
		}
		return a, changed
	}
	return emulated(appendSyncResponse(nil, req.Version, out, r)), changed
}

// cachedCols returns the cached request's collections with the keys the
// phone now holds, with the collections of a partial request in place of
// their cached versions.
func (r *Record) cachedCols(partial []eas.SyncCollection) []eas.SyncCollection {
	out := append([]eas.SyncCollection(nil), partial...)
	for _, c := range r.LastSync {
		dup := false
		for i := range partial {
			if partial[i].CollectionID == c.ID {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		key := "0"
		if st := r.Collections[c.ID]; st != nil {
			key = st.Key
		}
		out = append(out, eas.SyncCollection{SyncKey: key, CollectionID: c.ID, Class: c.Class, BodyTypes: c.BodyTypes,
			GetChanges: loadGetChanges(c.GetChanges)})
	}
	return out
}

// syncCollection computes one collection's answer; ok is false when the
// collection has nothing to report.
func (e *Emulator) syncCollection(r *Record, c *eas.SyncCollection) (rc respCol, ok, changed bool) {
	id := c.CollectionID
	rc = respCol{id: id, status: syncOK}
	st := r.Collections[id]
	if bt := pickBodyType(c.BodyTypes); bt != 0 && st != nil && st.BodyType != bt {
		st.BodyType = bt
		changed = true
	}
	switch {
	case c.SyncKey == "0":
		if id == "" {
			rc.key, rc.status = "0", syncProtocolError
			return rc, true, changed
		}
		if st == nil && len(r.Collections) >= maxCollections {
			rc.key, rc.status = "0", syncInvalidKey
			return rc, true, changed
		}
		// Initial sync: a new key, never any items (MS-ASCMD §2.2.1.21).
		// A phone that restarts its Inbox from 0 has dropped the notice;
		// it gets it again.
		st = &CollectionState{Key: r.newKey(), BodyType: pickBodyType(c.BodyTypes)}
		r.Collections[id] = st
		if id == r.InboxID {
			r.NoticeDelivered = false
		}
		rc.key = st.Key
		return rc, true, true
	case st != nil && c.SyncKey == st.Key:
		if st.NoticeInKey && !r.NoticeDelivered {
			r.NoticeDelivered = true // the phone acknowledged the notice
			changed = true
		}
		rc.notice = id == r.InboxID && r.NoticePending() && c.GetChanges != eas.GetChangesNo
		rc.responses = r.itemResponses(c)
		if !rc.notice && len(rc.responses) == 0 {
			return rc, false, changed
		}
		st.Prev, st.Key, st.NoticeInKey = st.Key, r.newKey(), rc.notice
		rc.key, rc.bodyType = st.Key, st.BodyType
		return rc, true, true
	case st != nil && st.Prev != "" && c.SyncKey == st.Prev:
		// The phone did not get the answer that issued st.Key: send it
		// again.
		rc.key, rc.bodyType = st.Key, st.BodyType
		rc.notice = st.NoticeInKey
		rc.responses = r.itemResponses(c)
		return rc, true, changed
	default:
		// A key easgate did not issue (Exchange's, or a past episode's):
		// Status 3 sends the phone back to SyncKey 0.
		rc.key, rc.status = "0", syncInvalidKey
		return rc, true, changed
	}
}

// itemResponses answers the client's own changes in c (see above).
func (r *Record) itemResponses(c *eas.SyncCollection) []respItem {
	var out []respItem
	for _, cmd := range c.Commands {
		isNotice := r.NoticeID != "" && cmd.ID == r.NoticeID && c.CollectionID == r.InboxID
		it := respItem{kind: cmd.Kind.Tag(), id: cmd.ID, class: cmd.Class}
		switch cmd.Kind {
		case eas.SyncAdd:
			it.status = syncConversionError
		case eas.SyncChange, eas.SyncDelete:
			if isNotice {
				continue // easgate's own item: the change succeeds
			}
			it.status = syncConversionError
		case eas.SyncFetch:
			if isNotice {
				it.status, it.fetch = syncOK, true
			} else {
				it.status = syncNotFound
			}
		}
		out = append(out, it)
	}
	return out
}

// pickBodyType chooses the notice's body type from the client's
// BodyPreference list: HTML when accepted, else MIME, else plain text.
func pickBodyType(types []int) int {
	best := 0
	for _, t := range types {
		switch t {
		case eas.BodyTypeHTML:
			return eas.BodyTypeHTML
		case eas.BodyTypeMIME:
			best = eas.BodyTypeMIME
		case eas.BodyTypeText, eas.BodyTypeRTF:
			if best == 0 {
				best = eas.BodyTypeText
			}
		}
	}
	return best
}

// syncTop builds a Sync response with only a top-level Status (and Limit).
func syncTop(status, limit int) []byte {
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Element(wbxml.AirSyncStatus, strconv.Itoa(status))
	if limit > 0 {
		e.Element(wbxml.AirSyncLimit, strconv.Itoa(limit))
	}
	e.End()
	return e.Bytes()
}

// appendSyncResponse writes Sync > Collections > Collection > {Class
// (<14.0), SyncKey, CollectionId, Status, Commands > Add (the notice),
// Responses}.
func appendSyncResponse(dst []byte, v eas.Version, cols []respCol, r *Record) []byte {
	var e wbxml.Encoder
	e.Reset(dst)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	for i := range cols {
		c := &cols[i]
		e.Start(wbxml.AirSyncCollection)
		if c.class != "" {
			e.Element(wbxml.AirSyncClass, clean(c.class))
		}
		e.Element(wbxml.AirSyncSyncKey, clean(c.key))
		e.Element(wbxml.AirSyncCollectionId, clean(c.id))
		e.Element(wbxml.AirSyncStatus, strconv.Itoa(c.status))
		if c.notice {
			if r.NoticeID == "" {
				r.NoticeID = r.InboxID + ":" + r.KeyPrefix
			}
			e.Start(wbxml.AirSyncCommands)
			e.Start(wbxml.AirSyncAdd)
			e.Element(wbxml.AirSyncServerId, clean(r.NoticeID))
			writeNotice(&e, v, &r.Notice, c.bodyType)
			e.End() // Add
			e.End() // Commands
		}
		if len(c.responses) > 0 {
			e.Start(wbxml.AirSyncResponses)
			for _, it := range c.responses {
				e.Start(it.kind)
				if it.class != "" && v < eas.V140 && it.kind == wbxml.AirSyncAdd {
					e.Element(wbxml.AirSyncClass, clean(it.class))
				}
				if it.kind == wbxml.AirSyncAdd {
					e.Element(wbxml.AirSyncClientId, clean(it.id))
				} else {
					e.Element(wbxml.AirSyncServerId, clean(it.id))
				}
				e.Element(wbxml.AirSyncStatus, strconv.Itoa(it.status))
				if it.fetch {
					writeNotice(&e, v, &r.Notice, c.bodyType)
				}
				e.End()
			}
			e.End() // Responses
		}
		e.End() // Collection
	}
	e.End() // Collections
	e.End() // Sync
	return e.Bytes()
}

const dateLayout = "2006-01-02T15:04:05.000Z"

// writeNotice writes the notice's ApplicationData (MS-ASEMAIL, MS-ASAIRS):
// To, From, Subject, DateReceived, DisplayTo, ThreadTopic, Importance,
// Read, the body, MessageClass, InternetCPID, ContentClass, NativeBodyType.
func writeNotice(e *wbxml.Encoder, v eas.Version, m *Mail, bodyType int) {
	e.Start(wbxml.AirSyncApplicationData)
	e.Element(wbxml.EmailTo, clean(m.To))
	e.Element(wbxml.EmailFrom, clean(m.From))
	e.Element(wbxml.EmailSubject, clean(m.Subject))
	e.Element(wbxml.EmailDateReceived, m.Date.UTC().Format(dateLayout))
	e.Element(wbxml.EmailDisplayTo, clean(m.To))
	e.Element(wbxml.EmailThreadTopic, clean(m.Subject))
	e.Element(wbxml.EmailImportance, "2") // high
	e.Element(wbxml.EmailRead, "0")
	typ, data := noticeBody(m, bodyType)
	e.Start(wbxml.AirSyncBaseBody)
	e.Element(wbxml.AirSyncBaseType, strconv.Itoa(typ))
	e.Element(wbxml.AirSyncBaseEstimatedDataSize, strconv.Itoa(len(data)))
	e.Element(wbxml.AirSyncBaseData, data)
	e.End()
	e.Element(wbxml.EmailMessageClass, eas.MessageClassNote)
	e.Element(wbxml.EmailInternetCPID, "65001")
	e.Element(wbxml.EmailContentClass, "urn:content-classes:message")
	if v >= eas.V120 {
		native := eas.BodyTypeText
		if m.HTML != "" {
			native = eas.BodyTypeHTML
		}
		e.Element(wbxml.AirSyncBaseNativeBodyType, strconv.Itoa(native))
	}
	e.End()
}

// noticeBody returns the body in the type asked for; a type without
// content falls back to the other one.
func noticeBody(m *Mail, want int) (int, string) {
	html, text := clean(m.HTML), clean(m.Text)
	switch want {
	case eas.BodyTypeHTML:
		if html != "" {
			return eas.BodyTypeHTML, html
		}
	case eas.BodyTypeMIME:
		return eas.BodyTypeMIME, noticeMIME(m, html, text)
	}
	if text == "" {
		return eas.BodyTypeHTML, html
	}
	return eas.BodyTypeText, text
}

// noticeMIME builds a multipart/alternative RFC 5322 message (plain text
// and HTML, both base64) for clients that ask for MIME bodies.
func noticeMIME(m *Mail, html, text string) string {
	const boundary = "easgate-notice-7f1d2c"
	var b strings.Builder
	b.WriteString("From: " + oneLine(m.From) + "\r\n")
	b.WriteString("To: " + oneLine(m.To) + "\r\n")
	b.WriteString("Subject: " + mime.BEncoding.Encode("utf-8", oneLine(m.Subject)) + "\r\n")
	b.WriteString("Date: " + m.Date.UTC().Format(time.RFC1123Z) + "\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n")
	part := func(ctype, body string) {
		if body == "" {
			return
		}
		b.WriteString("--" + boundary + "\r\nContent-Type: " + ctype + "; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString([]byte(body))
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	part("text/plain", text)
	part("text/html", html)
	b.WriteString("--" + boundary + "--\r\n")
	return b.String()
}
