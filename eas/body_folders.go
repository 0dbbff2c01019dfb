package eas

import "github.com/easgate/easgate/eas/wbxml"

// Folder types of FolderHierarchy Type (MS-ASCMD §2.2.3.186.3).
const (
	FolderTypeUserGeneric        = 1  // user-created folder (generic)
	FolderTypeInbox              = 2  // default Inbox
	FolderTypeDrafts             = 3  // default Drafts
	FolderTypeDeletedItems       = 4  // default Deleted Items
	FolderTypeSentItems          = 5  // default Sent Items
	FolderTypeOutbox             = 6  // default Outbox
	FolderTypeTasks              = 7  // default Tasks
	FolderTypeCalendar           = 8  // default Calendar
	FolderTypeContacts           = 9  // default Contacts
	FolderTypeNotes              = 10 // default Notes
	FolderTypeJournal            = 11 // default Journal
	FolderTypeUserMail           = 12 // user-created mail folder
	FolderTypeUserCalendar       = 13 // user-created calendar
	FolderTypeUserContacts       = 14 // user-created contacts
	FolderTypeUserTasks          = 15 // user-created tasks
	FolderTypeUserJournal        = 16 // user-created journal
	FolderTypeUserNotes          = 17 // user-created notes
	FolderTypeUnknown            = 18 // unknown folder type
	FolderTypeRecipientInfoCache = 19 // recipient information cache
)

// Folder is one folder of a FolderSync response (Add or Update).
type Folder struct {
	ServerID, ParentID, DisplayName string
	Type                            int
}

// FolderSyncInfo is what ReadFolderSync found.
type FolderSyncInfo struct {
	// Status of a response; 0 in a request.
	Status int
	// SyncKey: the client's key in a request, the new key in a response.
	SyncKey string
	// Count is Changes > Count of a response; 0 when absent.
	Count int
	// Folders added or updated, in body order. Keeps its capacity across
	// calls.
	Folders []Folder
	// Deleted holds the ServerIds of deleted folders.
	Deleted []string
}

// Inbox returns the first folder of type FolderTypeInbox.
func (f *FolderSyncInfo) Inbox() (Folder, bool) {
	for _, x := range f.Folders {
		if x.Type == FolderTypeInbox {
			return x, true
		}
	}
	return Folder{}, false
}

// ReadFolderSync reads a FolderSync response (Status, SyncKey, Changes) or
// request (SyncKey) into dst. dst is reset first; its slices keep their
// capacity. An empty body, another root element and data after the root
// element are errors.
func ReadFolderSync(body []byte, dst *FolderSyncInfo) error {
	*dst = FolderSyncInfo{SyncKey: dst.SyncKey, Folders: dst.Folders[:0], Deleted: dst.Deleted[:0]}
	keySeen := false
	defer func() {
		if !keySeen {
			dst.SyncKey = ""
		}
	}()
	r := newBodyReader("FolderSync", body)
	defer r.release()
	if len(body) == 0 {
		return r.empty()
	}
	return r.document(wbxml.FolderHierarchyFolderSync, func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.FolderHierarchyStatus:
			dst.Status, err = r.int(tok)
		case wbxml.FolderHierarchySyncKey:
			keySeen = true
			err = r.str(tok, &dst.SyncKey, maxShortValue)
		case wbxml.FolderHierarchyChanges:
			err = r.folderChanges(tok, dst)
		default:
			err = r.skip(tok)
		}
		return err
	})
}

func (r *bodyReader) folderChanges(start wbxml.Token, dst *FolderSyncInfo) error {
	return r.each(start, func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.FolderHierarchyCount:
			dst.Count, err = r.int(tok)
		case wbxml.FolderHierarchyAdd, wbxml.FolderHierarchyUpdate:
			err = r.folder(tok, bodyGrow(&dst.Folders))
		case wbxml.FolderHierarchyDelete:
			err = r.folderDelete(tok, dst)
		default:
			err = r.skip(tok)
		}
		return err
	})
}

func (r *bodyReader) folder(start wbxml.Token, f *Folder) error {
	var id, parent, name bool
	f.Type = 0
	defer func() {
		if !id {
			f.ServerID = ""
		}
		if !parent {
			f.ParentID = ""
		}
		if !name {
			f.DisplayName = ""
		}
	}()
	return r.each(start, func(tok wbxml.Token) (err error) {
		switch tok.Tag {
		case wbxml.FolderHierarchyServerId:
			id = true
			err = r.str(tok, &f.ServerID, maxShortValue)
		case wbxml.FolderHierarchyParentId:
			parent = true
			err = r.str(tok, &f.ParentID, maxShortValue)
		case wbxml.FolderHierarchyDisplayName:
			name = true
			err = r.str(tok, &f.DisplayName, maxShortValue)
		case wbxml.FolderHierarchyType:
			f.Type, err = r.int(tok)
		default:
			err = r.skip(tok)
		}
		return err
	})
}

func (r *bodyReader) folderDelete(start wbxml.Token, dst *FolderSyncInfo) error {
	return r.each(start, func(tok wbxml.Token) error {
		if tok.Tag != wbxml.FolderHierarchyServerId {
			return r.skip(tok)
		}
		return r.str(tok, bodyGrow(&dst.Deleted), maxShortValue)
	})
}
