package eas_test

import (
	"fmt"
	"time"

	"github.com/easgate/easgate/eas"
)

// A blocked 14.1 device asking for FolderSync gets HTTP 200 and a status
// body in the FolderHierarchy namespace (PROTOCOL.md §6.1 vector H).
func ExampleAppendStatusBody() {
	buf := make([]byte, 0, 32) // reuse per connection: no allocation
	body, ok := eas.AppendStatusBody(buf, eas.CmdFolderSync, eas.StatusDeviceIsBlockedForThisUser)
	fmt.Println(ok, eas.StatusText(eas.StatusDeviceIsBlockedForThisUser))
	fmt.Printf("% X\n", body)

	// The same decision for a 12.1 device: Exchange sends a bare 403.
	status, body := eas.AppendErrorAnswer(buf[:0], eas.V121, eas.CmdFolderSync, eas.StatusDeviceIsBlockedForThisUser, 403)
	fmt.Println(status, len(body))
	// Output:
	// true DeviceIsBlockedForThisUser
	// 03 01 6A 00 00 07 56 4C 03 31 32 39 00 01 01
	// 403 0
}

// A quarantined phone syncing its Inbox gets exactly one notice mail.
func ExampleAppendSyncResponse() {
	notice := eas.EmailItem{
		ServerID:     "5:1",
		From:         `"IT Service Desk" <it@example.com>`,
		To:           `"Jane Doe" <jdoe@example.com>`,
		Subject:      "Your phone is waiting for approval",
		DateReceived: time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC),
		TextBody:     "Your device is quarantined until IT approves it.",
	}
	body := eas.AppendSyncResponse(nil, eas.V141, []eas.SyncCollectionResponse{
		{SyncKey: "2", CollectionID: "5", Adds: []eas.EmailItem{notice}},
	}, eas.BodyTypeText)

	// Read it back as a client would see the collection.
	var s eas.SyncInfo
	if err := eas.ReadSync(body, &s); err != nil {
		fmt.Println(err)
		return
	}
	c := s.Collections[0]
	fmt.Printf("collection %s key %s status %d changes %v\n", c.CollectionID, c.SyncKey, c.Status, c.HasCommands)
	// Output:
	// collection 5 key 2 status 1 changes true
}
