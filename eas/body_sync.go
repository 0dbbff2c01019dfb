package eas

import "github.com/easgate/easgate/eas/wbxml"

// SyncInfo is what ReadSync found in a Sync request (or response).
type SyncInfo struct {
	// Wait is the request's Wait in minutes (12.1+); 0 when absent.
	Wait int
	// HeartbeatInterval is the request's HeartbeatInterval in seconds
	// (14.0+); 0 when absent.
	HeartbeatInterval int
	// WindowSize is the request-level WindowSize (14.0+); 0 when absent.
	WindowSize int
	// Collections in body order. The slice keeps its capacity across
	// calls.
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

// SyncCollection is one Collection of a Sync request or response.
type SyncCollection struct {
	SyncKey, CollectionID string
	// Class is sent by 2.5/12.x clients ("Email", "Calendar", ...).
	Class string
	// GetChanges is true when the collection has a GetChanges element
	// that is empty or not "0". Absence is reported as false, although
	// the server's default then is to send changes when SyncKey ≠ "0".
	GetChanges bool
	// HasCommands is true when the client sends changes (a Commands
	// element) for this collection.
	HasCommands bool
	// WindowSize of the collection; 0 when absent.
	WindowSize int
	// Status and MoreAvailable are set when reading a response.
	Status        int
	MoreAvailable bool
}

// maxWait bounds Wait values read as numbers (protocol range 1–59).
const maxWait = maxHeartbeat / 60

// ReadSync reads a Sync request (or response) into dst. dst is reset
// first; dst.Collections keeps its capacity and equal strings are reused.
// Commands, Options and Supported are skipped unread. An empty body sets
// Empty and is not an error; data after the root element is.
func ReadSync(body []byte, dst *SyncInfo) error {
	cols := dst.Collections[:0]
	*dst = SyncInfo{Collections: cols}
	if len(body) == 0 {
		dst.Empty = true
		return nil
	}
	r := newBodyReader("Sync", body)
	defer r.release()
	return r.document(wbxml.AirSyncSync, func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.AirSyncCollections:
			return r.syncCollections(tok, dst)
		case wbxml.AirSyncWait:
			v, err := r.uint(tok, maxWait)
			if err != nil {
				return err
			}
			dst.Wait = int(v)
		case wbxml.AirSyncHeartbeatInterval:
			v, err := r.uint(tok, maxHeartbeat)
			if err != nil {
				return err
			}
			dst.HeartbeatInterval = int(v)
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

func (r *bodyReader) syncCollections(start wbxml.Token, dst *SyncInfo) error {
	return r.each(start, func(tok wbxml.Token) error {
		if tok.Tag != wbxml.AirSyncCollection {
			return r.skip(tok)
		}
		return r.syncCollection(tok, bodyGrow(&dst.Collections))
	})
}

func (r *bodyReader) syncCollection(start wbxml.Token, c *SyncCollection) error {
	// Keep the strings for reuse; clear everything else.
	*c = SyncCollection{SyncKey: c.SyncKey, CollectionID: c.CollectionID, Class: c.Class}
	var key, id, class bool
	defer func() {
		if !key {
			c.SyncKey = ""
		}
		if !id {
			c.CollectionID = ""
		}
		if !class {
			c.Class = ""
		}
	}()
	return r.each(start, func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.AirSyncSyncKey:
			key = true
			err = r.str(tok, &c.SyncKey, maxShortValue)
		case wbxml.AirSyncCollectionId:
			id = true
			err = r.str(tok, &c.CollectionID, maxShortValue)
		case wbxml.AirSyncClass:
			class = true
			err = r.str(tok, &c.Class, maxShortValue)
		case wbxml.AirSyncGetChanges:
			var b []byte
			b, err = r.text(tok)
			v := bodyTrim(b)
			c.GetChanges = !(len(v) == 1 && v[0] == '0')
		case wbxml.AirSyncWindowSize:
			c.WindowSize, err = r.int(tok)
		case wbxml.AirSyncStatus:
			c.Status, err = r.int(tok)
		case wbxml.AirSyncMoreAvailable:
			c.MoreAvailable = true
			err = r.skip(tok)
		case wbxml.AirSyncCommands:
			c.HasCommands = true
			err = r.skip(tok)
		default:
			err = r.skip(tok)
		}
		return err
	})
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
