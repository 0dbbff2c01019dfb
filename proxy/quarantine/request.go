package quarantine

import "github.com/easgate/easgate/eas"

// Request reading. Sync, GetItemEstimate, FolderSync and Settings requests
// are read by the eas body readers (eas.ReadSync, eas.ReadGetItemEstimate,
// eas.ReadFolderSync, eas.ReadSettings), which bound what they keep. The
// Sync readers keep at most eas.MaxSyncCollections collections,
// eas.MaxSyncCommands client commands and ids of eas.MaxSyncIDLen bytes;
// beyond that the request is refused as a protocol error rather than held
// in memory. ReadSettings lists at most eas.MaxSettingsProperties
// properties in order and flags the presence of every one.

// maxCollections bounds the collections a device's Record keeps, as eas
// bounds the collections of one request.
const maxCollections = eas.MaxSyncCollections

// The Record keeps a cached collection's GetChanges (cachedCol, persisted)
// as -1 absent, 0 for "0" and 1 for any other value.
const (
	getChangesAbsent int8 = -1
	getChangesNo     int8 = 0
	getChangesYes    int8 = 1
)

// storeGetChanges converts GetChanges to its persisted form.
func storeGetChanges(g eas.SyncGetChanges) int8 {
	switch g {
	case eas.GetChangesNo:
		return getChangesNo
	case eas.GetChangesYes:
		return getChangesYes
	}
	return getChangesAbsent
}

// loadGetChanges converts a persisted GetChanges back.
func loadGetChanges(v int8) eas.SyncGetChanges {
	switch v {
	case getChangesNo:
		return eas.GetChangesNo
	case getChangesYes:
		return eas.GetChangesYes
	}
	return eas.GetChangesAbsent
}
