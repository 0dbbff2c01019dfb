package eas

import (
	"encoding/base64"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/easgate/easgate/eas/wbxml"
)

// Synthetic whole responses. easgate uses them to emulate Exchange's
// quarantine (PROTOCOL.md §4.3): the phone gets HTTP 200 and a mailbox
// that is empty except for one notice in the Inbox. Element order follows
// the MS-ASCMD schemas and examples (Sync §2.2.3.29.2 and §4.5.8,
// FolderSync §2.2.1.5, Ping §2.2.1.13, GetItemEstimate §2.2.1.9) and
// MS-ASAIRS/MS-ASEMAIL for the item.
//
// Builders never fail: NUL bytes are removed and invalid UTF-8 is replaced
// in every string, because WBXML inline strings cannot carry them.

// Body types of airsyncbase:Type (MS-ASAIRS §2.2.2.22.1).
const (
	BodyTypeText = 1
	BodyTypeHTML = 2
	BodyTypeRTF  = 3
	BodyTypeMIME = 4
)

// MessageClassNote is the message class of an ordinary mail.
const MessageClassNote = "IPM.Note"

// emailDateLayout is the DateReceived format (MS-ASDTYPE §2.3, dateTime in
// UTC with milliseconds).
const emailDateLayout = "2006-01-02T15:04:05.000Z"

// EmailItem is a mail that a synthetic Sync response adds to a folder.
// From and To are RFC 5322 address lists as they should appear
// (`"IT Service Desk" <it@example.com>`).
type EmailItem struct {
	ServerID     string
	From, To     string
	Subject      string
	DateReceived time.Time
	Read         bool
	MessageClass string // "" means MessageClassNote
	HTMLBody     string
	TextBody     string
}

// SyncCollectionResponse is one Collection of a synthetic Sync response.
type SyncCollectionResponse struct {
	// Class is written only for protocol versions before 14.0, which
	// send it in Sync responses (MS-ASCMD §2.2.3.27.6).
	Class        string
	SyncKey      string
	CollectionID string
	// Status of the collection; 0 is written as 1 (success).
	Status int
	// Adds are new items (server changes). None means no Commands element:
	// "no changes".
	Adds          []EmailItem
	MoreAvailable bool
}

// AppendSyncResponse appends a Sync response for protocol version v to dst:
//
//	Sync > Collections > Collection > {Class (<14.0), SyncKey, CollectionId,
//	Status, Commands > Add > {ServerId, ApplicationData}, MoreAvailable}
//
// Each item is written as email:To, From, Subject, DateReceived,
// ThreadTopic, Importance, Read, then the body and MessageClass. From 12.0
// the body is airsyncbase:Body {Type, EstimatedDataSize, Data} in the
// preferred bodyType (BodyTypeText, BodyTypeHTML or BodyTypeMIME; a type
// the item has no content for falls back to the other one, RTF to text),
// followed by InternetCPID 65001, ContentClass and NativeBodyType. Version
// 2.5 has no AirSyncBase: the text body goes in email:Body.
func AppendSyncResponse(dst []byte, v Version, cols []SyncCollectionResponse, bodyType int) []byte {
	var e wbxml.Encoder
	e.Reset(dst)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	for i := range cols {
		c := &cols[i]
		e.Start(wbxml.AirSyncCollection)
		if c.Class != "" && v < V140 {
			e.Element(wbxml.AirSyncClass, respClean(c.Class))
		}
		e.Element(wbxml.AirSyncSyncKey, respClean(c.SyncKey))
		e.Element(wbxml.AirSyncCollectionId, respClean(c.CollectionID))
		status := c.Status
		if status == 0 {
			status = 1
		}
		respInt(&e, wbxml.AirSyncStatus, status)
		if len(c.Adds) > 0 {
			e.Start(wbxml.AirSyncCommands)
			for j := range c.Adds {
				respEmailAdd(&e, v, &c.Adds[j], bodyType)
			}
			e.End() // Commands
		}
		if c.MoreAvailable {
			e.Empty(wbxml.AirSyncMoreAvailable)
		}
		e.End() // Collection
	}
	e.End() // Collections
	e.End() // Sync
	return e.Bytes()
}

func respEmailAdd(e *wbxml.Encoder, v Version, m *EmailItem, bodyType int) {
	e.Start(wbxml.AirSyncAdd)
	e.Element(wbxml.AirSyncServerId, respClean(m.ServerID))
	e.Start(wbxml.AirSyncApplicationData)
	subject := respClean(m.Subject)
	e.Element(wbxml.EmailTo, respClean(m.To))
	e.Element(wbxml.EmailFrom, respClean(m.From))
	e.Element(wbxml.EmailSubject, subject)
	var date [32]byte
	e.Start(wbxml.EmailDateReceived)
	e.Text(m.DateReceived.UTC().AppendFormat(date[:0], emailDateLayout))
	e.End()
	e.Element(wbxml.EmailThreadTopic, subject)
	e.Element(wbxml.EmailImportance, "1")
	if m.Read {
		e.Element(wbxml.EmailRead, "1")
	} else {
		e.Element(wbxml.EmailRead, "0")
	}
	class := respClean(m.MessageClass)
	if class == "" {
		class = MessageClassNote
	}
	if v < V120 {
		// 2.5: email:BodyTruncated then email:Body (plain text).
		text := m.TextBody
		if text == "" {
			text = respHTMLToText(m.HTMLBody)
		}
		e.Element(wbxml.EmailBodyTruncated, "0")
		e.Element(wbxml.EmailBody, respClean(text))
		e.Element(wbxml.EmailMessageClass, class)
		e.End() // ApplicationData
		e.End() // Add
		return
	}
	typ, data := respBody(m, bodyType)
	e.Start(wbxml.AirSyncBaseBody)
	respInt(e, wbxml.AirSyncBaseType, typ)
	respInt(e, wbxml.AirSyncBaseEstimatedDataSize, len(data))
	e.Element(wbxml.AirSyncBaseData, data)
	e.End() // Body
	e.Element(wbxml.EmailMessageClass, class)
	e.Element(wbxml.EmailInternetCPID, "65001")
	e.Element(wbxml.EmailContentClass, "urn:content-classes:message")
	native := BodyTypeText
	if m.HTMLBody != "" {
		native = BodyTypeHTML
	}
	respInt(e, wbxml.AirSyncBaseNativeBodyType, native)
	e.End() // ApplicationData
	e.End() // Add
}

// respBody picks the body type and data for an item.
func respBody(m *EmailItem, want int) (int, string) {
	html, text := respClean(m.HTMLBody), respClean(m.TextBody)
	switch want {
	case BodyTypeHTML:
		if html != "" || text == "" {
			return BodyTypeHTML, html
		}
		return BodyTypeText, text
	case BodyTypeMIME:
		return BodyTypeMIME, respMIME(m, html, text)
	}
	if text == "" && html != "" {
		text = respHTMLToText(html)
	}
	return BodyTypeText, text
}

// respMIME builds a single-part RFC 5322 message for clients that ask for
// MIME bodies (iOS Mail often does). Header values have CR/LF removed; the
// subject is RFC 2047 encoded when needed; the body is base64.
func respMIME(m *EmailItem, html, text string) string {
	ctype, body := "text/plain", text
	if html != "" {
		ctype, body = "text/html", html
	}
	var b strings.Builder
	b.WriteString("From: ")
	b.WriteString(respHeader(m.From))
	b.WriteString("\r\nTo: ")
	b.WriteString(respHeader(m.To))
	b.WriteString("\r\nSubject: ")
	b.WriteString(mime.BEncoding.Encode("utf-8", respHeader(respClean(m.Subject))))
	b.WriteString("\r\nDate: ")
	b.WriteString(m.DateReceived.UTC().Format(time.RFC1123Z))
	b.WriteString("\r\nMIME-Version: 1.0\r\nContent-Type: ")
	b.WriteString(ctype)
	b.WriteString("; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString([]byte(body))
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
	return b.String()
}

func respHeader(s string) string {
	s = respClean(s)
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
	}
	return s
}

// respHTMLToText is a minimal tag stripper for the fallback when only an
// HTML body exists and a text body is needed: it drops tags and decodes
// the five XML entities. Good enough for a short notice.
func respHTMLToText(html string) string {
	if html == "" {
		return ""
	}
	var b strings.Builder
	in := false
	for i := 0; i < len(html); i++ {
		c := html[i]
		switch {
		case c == '<':
			in = true
		case c == '>' && in:
			in = false
		case !in:
			b.WriteByte(c)
		}
	}
	r := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#39;", "'", "&amp;", "&")
	return strings.TrimSpace(r.Replace(b.String()))
}

// respClean returns s without NUL bytes and with invalid UTF-8 replaced;
// s itself (no allocation) when it is already clean.
func respClean(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

// respInt appends <t>n</t> without allocating.
func respInt(e *wbxml.Encoder, t wbxml.Tag, n int) {
	var buf [20]byte
	e.Start(t)
	e.Text(strconv.AppendInt(buf[:0], int64(n), 10))
	e.End()
}

// AppendFolderSyncResponse appends a FolderSync response: Status, and for
// status 1 the new SyncKey and Changes > {Count, Add > {ServerId, ParentId,
// DisplayName, Type}} (MS-ASCMD §2.2.1.5). Other statuses carry only the
// Status, as Exchange sends them.
func AppendFolderSyncResponse(dst []byte, status int, syncKey string, adds []Folder) []byte {
	var e wbxml.Encoder
	e.Reset(dst)
	e.Header()
	e.Start(wbxml.FolderHierarchyFolderSync)
	respInt(&e, wbxml.FolderHierarchyStatus, status)
	if status == 1 {
		e.Element(wbxml.FolderHierarchySyncKey, respClean(syncKey))
		e.Start(wbxml.FolderHierarchyChanges)
		respInt(&e, wbxml.FolderHierarchyCount, len(adds))
		for i := range adds {
			f := &adds[i]
			e.Start(wbxml.FolderHierarchyAdd)
			e.Element(wbxml.FolderHierarchyServerId, respClean(f.ServerID))
			parent := respClean(f.ParentID)
			if parent == "" {
				parent = "0" // top level (MS-ASCMD §2.2.3.123.2)
			}
			e.Element(wbxml.FolderHierarchyParentId, parent)
			e.Element(wbxml.FolderHierarchyDisplayName, respClean(f.DisplayName))
			respInt(&e, wbxml.FolderHierarchyType, f.Type)
			e.End() // Add
		}
		e.End() // Changes
	}
	e.End() // FolderSync
	return e.Bytes()
}

// AppendPingResponse appends a Ping response: Status, and for status 2
// (PingStatusChanges) Folders > Folder with each changed folder's id
// (MS-ASCMD §2.2.3.73.2). With status 1 it is vector G of PROTOCOL.md
// §6.1: 03 01 6A 00 00 0D 45 47 03 31 00 01 01.
func AppendPingResponse(dst []byte, status int, changedFolders []string) []byte {
	var e wbxml.Encoder
	e.Reset(dst)
	e.Header()
	e.Start(wbxml.PingPing)
	respInt(&e, wbxml.PingStatus, status)
	if status == PingStatusChanges && len(changedFolders) > 0 {
		e.Start(wbxml.PingFolders)
		for _, id := range changedFolders {
			e.Element(wbxml.PingFolder, respClean(id))
		}
		e.End()
	}
	e.End()
	return e.Bytes()
}

// Estimate is one collection of a GetItemEstimate response.
type Estimate struct {
	CollectionID string
	Count        int
	// Status: 1 success, 2 invalid collection, 3 sync state not primed,
	// 4 invalid SyncKey (MS-ASCMD §2.2.3.177.7); 0 is written as 1.
	Status int
}

// AppendGetItemEstimateResponse appends a GetItemEstimate response with one
// Response > {Status, Collection > {CollectionId, Estimate}} per estimate
// (MS-ASCMD §2.2.1.9). Estimate is written only for status 1.
func AppendGetItemEstimateResponse(dst []byte, estimates []Estimate) []byte {
	var e wbxml.Encoder
	e.Reset(dst)
	e.Header()
	e.Start(wbxml.ItemEstimateGetItemEstimate)
	for i := range estimates {
		x := &estimates[i]
		status := x.Status
		if status == 0 {
			status = 1
		}
		e.Start(wbxml.ItemEstimateResponse)
		respInt(&e, wbxml.ItemEstimateStatus, status)
		e.Start(wbxml.ItemEstimateCollection)
		e.Element(wbxml.ItemEstimateCollectionId, respClean(x.CollectionID))
		if status == 1 {
			respInt(&e, wbxml.ItemEstimateEstimate, x.Count)
		}
		e.End() // Collection
		e.End() // Response
	}
	e.End()
	return e.Bytes()
}
