package eas

import (
	"strconv"

	"github.com/easgate/easgate/eas/wbxml"
)

// Bounds ReadSync (and ReadGetItemEstimate) enforce, so what they keep is
// bounded by these numbers and not only by the body's size. A body beyond
// them fails with a BodyError of kind BodyTooLong naming the element and
// its offset: a phone never sends that much, and a server that buffered
// it would be holding an attacker's data.
const (
	// MaxSyncCollections is the most Collection elements one Sync or
	// GetItemEstimate body may carry.
	MaxSyncCollections = 512
	// MaxSyncCommands is the most client commands (Add, Change, Delete,
	// Fetch) one Sync body may carry, over all its collections.
	MaxSyncCommands = 10000
	// MaxSyncIDLen is the longest SyncKey, CollectionId, ServerId,
	// ClientId or Class, in bytes. MS-ASCMD allows 64 characters for the
	// ids; 256 bytes leaves room for servers that issue longer ones.
	MaxSyncIDLen = 256
	// MaxSyncBodyTypes is how many airsyncbase:BodyPreference Types
	// ReadSync keeps per collection (MS-ASAIRS defines four); further ones
	// are still read, and must be numbers, but are not kept.
	MaxSyncBodyTypes = 8
)

// SyncInfo is what ReadSync found in a Sync request (or response).
type SyncInfo struct {
	// Wait is the request's Wait in minutes (12.1+); 0 when absent.
	Wait int
	// HeartbeatInterval is the request's HeartbeatInterval in seconds
	// (14.0+); 0 when absent.
	HeartbeatInterval int
	// HasWait and HasHeartbeatInterval are true when the element is
	// present, whatever its value: a Wait of 0 is out of range (the server
	// answers Status 14), an absent one is not, and a request with both
	// elements is a protocol error (Status 4, MS-ASCMD §2.2.3.177.17).
	// When one is repeated, the first counts (the hold easgate gives the
	// request, ReadSyncHold, is read the same way).
	HasWait, HasHeartbeatInterval bool
	// WindowSize is the request-level WindowSize (14.0+); 0 when absent.
	WindowSize int
	// Collections in body order. The slice, and each entry's Commands and
	// BodyTypes, keep their capacity across calls.
	Collections []SyncCollection
	// Partial is true when the request has a Partial element.
	Partial bool
	// Status is the top-level Status of a response (e.g. 4, 13, 14,
	// or a common status); 0 when absent.
	Status int
	// Limit is the response's Limit (with Status 14 or 15); 0 when absent.
	Limit int
	// Empty is true for an empty body (MS-ASCMD §2.2.1.21.1: the client
	// asks the server to reuse the previous request).
	Empty bool
}

// SyncGetChanges is what a Sync collection's GetChanges element says
// (MS-ASCMD §2.2.3.84). The zero value is GetChangesAbsent.
type SyncGetChanges uint8

// Values of SyncGetChanges.
const (
	// GetChangesAbsent: no GetChanges element. The server's default then
	// applies: changes are sent unless SyncKey is "0".
	GetChangesAbsent SyncGetChanges = iota
	// GetChangesNo: GetChanges with the value 0; the client does not want
	// the server's changes.
	GetChangesNo
	// GetChangesYes: an empty GetChanges, or any value other than 0.
	GetChangesYes
)

var getChangesNames = [...]string{GetChangesAbsent: "absent", GetChangesNo: "no", GetChangesYes: "yes"}

// String returns "absent", "no" or "yes".
func (g SyncGetChanges) String() string {
	if int(g) < len(getChangesNames) {
		return getChangesNames[g]
	}
	return "SyncGetChanges(" + strconv.Itoa(int(g)) + ")"
}

// SyncCollection is one Collection of a Sync request or response.
type SyncCollection struct {
	SyncKey, CollectionID string
	// Class is sent by 2.5/12.x clients ("Email", "Calendar", ...).
	Class string
	// GetChanges tells whether the collection has a GetChanges element
	// and whether it is 0.
	GetChanges SyncGetChanges
	// HasCommands is true when the collection has a Commands element
	// (possibly empty).
	HasCommands bool
	// Commands are the item commands inside Commands, in body order:
	// Add, Change, Delete and Fetch (other elements are skipped). In a
	// response these are the server's commands, whose Add carries a
	// ServerId and therefore reads with an empty ID.
	Commands []SyncCommand
	// BodyTypes are the airsyncbase:BodyPreference Types of the
	// collection's Options, in body order (at most MaxSyncBodyTypes).
	BodyTypes []int
	// WindowSize of the collection; 0 when absent.
	WindowSize int
	// Status and MoreAvailable are set when reading a response.
	Status        int
	MoreAvailable bool
}

// SyncCommandKind is the element of a client item command.
type SyncCommandKind uint8

// Kinds of SyncCommand.
const (
	SyncAdd SyncCommandKind = iota + 1
	SyncChange
	SyncDelete
	SyncFetch
)

var syncCommandTags = [...]wbxml.Tag{
	SyncAdd:    wbxml.AirSyncAdd,
	SyncChange: wbxml.AirSyncChange,
	SyncDelete: wbxml.AirSyncDelete,
	SyncFetch:  wbxml.AirSyncFetch,
}

// Tag returns the AirSync element of the command (AirSyncAdd, ...), or 0
// for an invalid kind. The same element answers it in Responses.
func (k SyncCommandKind) Tag() wbxml.Tag {
	if int(k) < len(syncCommandTags) {
		return syncCommandTags[k]
	}
	return 0
}

// String returns the element name: "Add", "Change", "Delete", "Fetch".
func (k SyncCommandKind) String() string {
	if t := k.Tag(); t != 0 {
		return t.Name()
	}
	return "SyncCommandKind(" + strconv.Itoa(int(k)) + ")"
}

// syncCommandKind maps a Commands child to its kind; 0 for elements that
// are not item commands.
func syncCommandKind(t wbxml.Tag) SyncCommandKind {
	for k, kt := range syncCommandTags {
		if kt == t && k != 0 {
			return SyncCommandKind(k)
		}
	}
	return 0
}

// SyncCommand is one item command of a Sync collection. ApplicationData
// is skipped: nothing of the item's content is copied out of the body.
type SyncCommand struct {
	Kind SyncCommandKind
	// ID is the ClientId of an Add and the ServerId of the others; ""
	// when absent.
	ID string
	// Class is the item's own Class (12.x clients send it in an Add); ""
	// when absent.
	Class string
}

// maxWait bounds Wait values read as numbers (protocol range 1–59).
const maxWait = maxHeartbeat / 60

// ReadSync reads a Sync request (or response) into dst. dst is reset
// first; dst.Collections, and each collection's Commands and BodyTypes,
// keep their capacity, and equal strings are reused. It reads the
// collections' client commands (kind, ClientId or ServerId, Class) and
// their Options' BodyPreference Types; ApplicationData, the rest of
// Options and Supported are skipped unread. Bodies over MaxSyncCollections
// collections, MaxSyncCommands commands or with an id over MaxSyncIDLen
// bytes fail with BodyTooLong. An empty body sets Empty and is not an
// error; data after the root element is.
func ReadSync(body []byte, dst *SyncInfo) error {
	cols := dst.Collections[:0]
	*dst = SyncInfo{Collections: cols}
	if len(body) == 0 {
		dst.Empty = true
		return nil
	}
	r := newBodyReader("Sync", body)
	defer r.release()
	ncmds := 0
	return r.document(wbxml.AirSyncSync, func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.AirSyncCollections:
			return r.syncCollections(tok, dst, &ncmds)
		case wbxml.AirSyncWait:
			v, err := r.uint(tok, maxWait)
			if err != nil {
				return err
			}
			if !dst.HasWait { // repeated: the first counts, as in ReadSyncHold
				dst.Wait, dst.HasWait = int(v), true
			}
		case wbxml.AirSyncHeartbeatInterval:
			v, err := r.uint(tok, maxHeartbeat)
			if err != nil {
				return err
			}
			if !dst.HasHeartbeatInterval {
				dst.HeartbeatInterval, dst.HasHeartbeatInterval = int(v), true
			}
		case wbxml.AirSyncWindowSize:
			dst.WindowSize, err = r.int(tok)
		case wbxml.AirSyncPartial:
			dst.Partial = true
			err = r.skip(tok)
		case wbxml.AirSyncStatus:
			dst.Status, err = r.int(tok)
		case wbxml.AirSyncLimit:
			dst.Limit, err = r.int(tok)
		default:
			err = r.skip(tok)
		}
		return err
	})
}

func (r *bodyReader) syncCollections(start wbxml.Token, dst *SyncInfo, ncmds *int) error {
	return r.each(start, func(tok wbxml.Token) error {
		if tok.Tag != wbxml.AirSyncCollection {
			return r.skip(tok)
		}
		if err := r.bound(tok, len(dst.Collections), MaxSyncCollections, "collections"); err != nil {
			return err
		}
		return r.syncCollection(tok, bodyGrow(&dst.Collections), ncmds)
	})
}

// bound checks that tok, a StartTag just read, may follow n elements like
// it when at most max are allowed; the error names tok at its offset.
func (r *bodyReader) bound(tok wbxml.Token, n, max int, what string) error {
	if n < max {
		return nil
	}
	return r.fail(BodyTooLong, tok.Tag, r.d.Offset()-1, "more than "+strconv.Itoa(max)+" "+what)
}

func (r *bodyReader) syncCollection(start wbxml.Token, c *SyncCollection, ncmds *int) error {
	// Keep the strings and slices for reuse; clear everything else.
	*c = SyncCollection{SyncKey: c.SyncKey, CollectionID: c.CollectionID, Class: c.Class,
		Commands: c.Commands[:0], BodyTypes: c.BodyTypes[:0]}
	ids := idFields{
		tags: [3]wbxml.Tag{wbxml.AirSyncSyncKey, wbxml.AirSyncCollectionId, wbxml.AirSyncClass},
		dst:  [3]*string{&c.SyncKey, &c.CollectionID, &c.Class},
	}
	defer ids.clear()
	return r.each(start, func(tok wbxml.Token) (err error) {
		if ok, err := ids.read(r, tok); ok {
			return err
		}
		switch tok.Tag {
		case wbxml.AirSyncGetChanges:
			var b []byte
			b, err = r.text(tok)
			v := bodyTrim(b)
			c.GetChanges = GetChangesYes
			if len(v) == 1 && v[0] == '0' {
				c.GetChanges = GetChangesNo
			}
		case wbxml.AirSyncWindowSize:
			c.WindowSize, err = r.int(tok)
		case wbxml.AirSyncStatus:
			c.Status, err = r.int(tok)
		case wbxml.AirSyncMoreAvailable:
			c.MoreAvailable = true
			err = r.skip(tok)
		case wbxml.AirSyncOptions:
			err = r.syncOptions(tok, c)
		case wbxml.AirSyncCommands:
			c.HasCommands = true
			err = r.syncCommands(tok, c, ncmds)
		default:
			err = r.skip(tok)
		}
		return err
	})
}

// syncOptions reads the BodyPreference Types of an Options element (a
// collection may have several Options, one per Class, in 14.0+).
func (r *bodyReader) syncOptions(start wbxml.Token, c *SyncCollection) error {
	return r.each(start, func(tok wbxml.Token) error {
		if tok.Tag != wbxml.AirSyncBaseBodyPreference {
			return r.skip(tok)
		}
		return r.each(tok, func(tok wbxml.Token) error {
			if tok.Tag != wbxml.AirSyncBaseType {
				return r.skip(tok)
			}
			n, err := r.int(tok)
			if err == nil && len(c.BodyTypes) < MaxSyncBodyTypes {
				c.BodyTypes = append(c.BodyTypes, n)
			}
			return err
		})
	})
}

// syncCommands reads the item commands of a Commands element; *ncmds
// counts them over the whole body.
func (r *bodyReader) syncCommands(start wbxml.Token, c *SyncCollection, ncmds *int) error {
	return r.each(start, func(tok wbxml.Token) error {
		kind := syncCommandKind(tok.Tag)
		if kind == 0 {
			return r.skip(tok)
		}
		if err := r.bound(tok, *ncmds, MaxSyncCommands, "client commands"); err != nil {
			return err
		}
		*ncmds++
		return r.syncCommand(tok, kind, bodyGrow(&c.Commands))
	})
}

func (r *bodyReader) syncCommand(start wbxml.Token, kind SyncCommandKind, cmd *SyncCommand) error {
	cmd.Kind = kind
	idTag := wbxml.AirSyncServerId
	if kind == SyncAdd {
		idTag = wbxml.AirSyncClientId
	}
	ids := idFields{tags: [3]wbxml.Tag{idTag, wbxml.AirSyncClass}, dst: [3]*string{&cmd.ID, &cmd.Class}}
	defer ids.clear()
	return r.each(start, func(tok wbxml.Token) error {
		if ok, err := ids.read(r, tok); ok {
			return err
		}
		return r.skip(tok) // ApplicationData: never stored
	})
}

// idFields reads up to three identifier elements of one container into
// strings that keep their previous value until read, so an equal value
// costs no allocation; clear (deferred) empties those whose element was
// absent. An entry with a nil dst is unused.
type idFields struct {
	tags [3]wbxml.Tag
	dst  [3]*string
	seen [3]bool
}

// read reads tok into its string when tok is one of f's elements; ok is
// false, and nothing is read, otherwise.
func (f *idFields) read(r *bodyReader, tok wbxml.Token) (ok bool, err error) {
	for i, t := range f.tags {
		if t == tok.Tag && f.dst[i] != nil {
			f.seen[i] = true
			return true, r.id(tok, f.dst[i])
		}
	}
	return false, nil
}

func (f *idFields) clear() {
	for i, d := range f.dst {
		if d != nil && !f.seen[i] {
			*d = ""
		}
	}
}

// id reads an identifier (SyncKey, CollectionId, ServerId, ClientId,
// Class) of at most MaxSyncIDLen bytes into *dst, reusing an equal string.
func (r *bodyReader) id(start wbxml.Token, dst *string) error {
	off := r.d.Offset()
	b, err := r.text(start)
	if err != nil {
		return err
	}
	if len(b) > MaxSyncIDLen {
		return r.fail(BodyTooLong, start.Tag, off, "value longer than "+strconv.Itoa(MaxSyncIDLen)+" bytes")
	}
	if *dst != string(b) {
		*dst = string(b)
	}
	return nil
}

// ReadSyncHold returns how long the server may hold a Sync request: Wait
// × 60 or HeartbeatInterval, in seconds, whichever comes first in the body
// (the protocol forbids both). It skips Collections without reading them
// and stops at the first of the two. ok is false, with a nil error, for an
// empty body or one with neither element. It allocates nothing on success
// (hot path).
func ReadSyncHold(body []byte) (seconds int, ok bool, err error) {
	if len(body) == 0 {
		return 0, false, nil
	}
	r := newBodyReader("Sync", body)
	defer r.release()
	tok, found, err := r.seekRoot(wbxml.AirSyncSync, wbxml.AirSyncWait, wbxml.AirSyncHeartbeatInterval)
	if err != nil || !found {
		return 0, false, err
	}
	if tok.Tag == wbxml.AirSyncWait {
		v, err := r.uint(tok, maxWait)
		if err != nil {
			return 0, false, err
		}
		return int(v) * 60, true, nil
	}
	v, err := r.uint(tok, maxHeartbeat)
	if err != nil {
		return 0, false, err
	}
	return int(v), true, nil
}
