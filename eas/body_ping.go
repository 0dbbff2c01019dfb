package eas

import "github.com/easgate/easgate/eas/wbxml"

// Ping status values (MS-ASCMD §2.2.3.177.11).
const (
	PingStatusExpired         = 1 // heartbeat expired, no changes
	PingStatusChanges         = 2 // changes in the listed folders
	PingStatusMissingParams   = 3 // resend the full request
	PingStatusSyntaxError     = 4
	PingStatusBadInterval     = 5 // response carries the allowed HeartbeatInterval
	PingStatusTooManyFolders  = 6 // response carries MaxFolders
	PingStatusHierarchyChange = 7 // run FolderSync
	PingStatusServerError     = 8
)

// maxHeartbeat bounds HeartbeatInterval and Wait values the readers accept
// as numbers; the protocol range is far smaller (60–3540 s, 1–59 min), and
// range checks against configuration belong to the caller.
const maxHeartbeat = 1 << 31 / 1000

// PingInfo is what ReadPing found in a Ping request or response.
type PingInfo struct {
	// HeartbeatInterval in seconds; 0 when absent. In a Status 5
	// response it is the interval the server allows.
	HeartbeatInterval int
	// Folders of a request (Id and Class), or the changed folders of a
	// Status 2 response (ID only).
	Folders []PingFolder
	// Status of a response; 0 in a request.
	Status int
	// MaxFolders of a Status 6 response; 0 when absent.
	MaxFolders int
	// Empty is true for an empty body: the client asks the server to
	// reuse its cached interval and folder list (MS-ASCMD §2.2.1.13).
	Empty bool
}

// PingFolder is one folder of a Ping request or response.
type PingFolder struct {
	ID    string
	Class string // "Email", "Calendar", "Contacts", "Tasks", "Notes"; "" in responses
}

// ReadPing reads a Ping request or response into dst. dst is reset first,
// but dst.Folders keeps its capacity, and a folder entry whose ID and Class
// equal the previous call's keeps its strings, so re-reading the same
// client's Ping allocates nothing. An empty body sets Empty and is not an
// error. Data after the root element is an error.
func ReadPing(body []byte, dst *PingInfo) error {
	folders := dst.Folders[:0]
	*dst = PingInfo{Folders: folders}
	if len(body) == 0 {
		dst.Empty = true
		return nil
	}
	r := newBodyReader("Ping", body)
	defer r.release()
	return r.document(wbxml.PingPing, func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.PingStatus:
			dst.Status, err = r.int(tok)
		case wbxml.PingHeartbeatInterval:
			v, err := r.uint(tok, maxHeartbeat)
			if err != nil {
				return err
			}
			dst.HeartbeatInterval = int(v)
		case wbxml.PingMaxFolders:
			dst.MaxFolders, err = r.int(tok)
		case wbxml.PingFolders:
			err = r.pingFolders(tok, dst)
		default:
			err = r.skip(tok)
		}
		return err
	})
}

func (r *bodyReader) pingFolders(start wbxml.Token, dst *PingInfo) error {
	return r.each(start, func(tok wbxml.Token) error {
		if tok.Tag != wbxml.PingFolder {
			return r.skip(tok)
		}
		return r.pingFolder(tok, bodyGrow(&dst.Folders))
	})
}

// bodyGrow extends *s by one element and returns it. The element keeps
// whatever the backing array held, so callers can reuse equal strings.
func bodyGrow[T any](s *[]T) *T {
	if len(*s) < cap(*s) {
		*s = (*s)[:len(*s)+1]
	} else {
		var zero T
		*s = append(*s, zero)
	}
	return &(*s)[len(*s)-1]
}

// pingFolder reads a request Folder {Id, Class} or a response Folder whose
// text is the folder id.
func (r *bodyReader) pingFolder(start wbxml.Token, f *PingFolder) error {
	var id, class bool
	defer func() {
		if !id {
			f.ID = ""
		}
		if !class {
			f.Class = ""
		}
	}()
	if !start.HasContent {
		return nil
	}
	for {
		off := r.d.Offset()
		tok, err := r.next()
		if err != nil {
			return err
		}
		switch tok.Kind {
		case wbxml.EndTag:
			return nil
		case wbxml.Text, wbxml.Opaque:
			// Response form: <Folder>5</Folder>. Trim white space a
			// pretty-printed XML source may have left.
			b := bodyTrim(tok.Data)
			if len(b) == 0 {
				continue
			}
			if id {
				return r.fail(BodyStructure, start.Tag, off, "folder has more than one id")
			}
			if len(b) > maxShortValue {
				return r.fail(BodyTooLong, start.Tag, off, "folder id too long")
			}
			if f.ID != string(b) {
				f.ID = string(b)
			}
			id = true
		case wbxml.StartTag:
			switch tok.Tag {
			case wbxml.PingId:
				if err := r.str(tok, &f.ID, maxShortValue); err != nil {
					return err
				}
				id = true
			case wbxml.PingClass:
				if err := r.str(tok, &f.Class, maxShortValue); err != nil {
					return err
				}
				class = true
			default:
				if err := r.skip(tok); err != nil {
					return err
				}
			}
		}
	}
}

func bodyTrim(b []byte) []byte {
	for len(b) > 0 && bodyIsSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && bodyIsSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// ReadPingInterval returns the HeartbeatInterval (seconds) of a Ping
// request, stopping as soon as it has read it. ok is false, with a nil
// error, when the body is empty or has no HeartbeatInterval: the server
// then reuses the last interval it saw for the device. It allocates nothing
// on success (hot path).
func ReadPingInterval(body []byte) (seconds int, ok bool, err error) {
	if len(body) == 0 {
		return 0, false, nil
	}
	r := newBodyReader("Ping", body)
	defer r.release()
	tok, found, err := r.seekRoot(wbxml.PingPing, wbxml.PingHeartbeatInterval, wbxml.PingHeartbeatInterval)
	if err != nil || !found {
		return 0, false, err
	}
	v, err := r.uint(tok, maxHeartbeat)
	if err != nil {
		return 0, false, err
	}
	return int(v), true, nil
}
