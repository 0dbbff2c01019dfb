package quarantine_test

import (
	"fmt"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
	"github.com/easgate/easgate/proxy/quarantine"
)

// A blocked 12.1 phone gets a bare 403; a 14.1 phone HTTP 200 with
// Status 129 in the command's namespace.
func ExampleBlock() {
	a := quarantine.Block(eas.CmdSync, eas.V121)
	fmt.Println(a.HTTPStatus, len(a.Body))
	a = quarantine.Block(eas.CmdFolderSync, eas.V141)
	fmt.Printf("%d %s % x\n", a.HTTPStatus, a.ContentType(), a.Body)
	// Output:
	// 403 0
	// 200 application/vnd.ms-sync.wbxml 03 01 6a 00 00 07 56 4c 03 31 32 39 00 01 01
}

// A quarantined phone: FolderSync goes to Exchange and its answer teaches
// the Inbox; Ping then reports the Inbox (the notice is waiting there).
func ExampleEmulator_Answer() {
	em, _ := quarantine.New(quarantine.Options{})
	dev := quarantine.Device{User: "jdoe@corp.example.com", DeviceID: "androidc1957925", DeviceType: "Android"}
	em.Enter(dev, "the device is not enrolled")

	var e wbxml.Encoder
	e.Header()
	e.Start(wbxml.FolderHierarchyFolderSync)
	e.Element(wbxml.FolderHierarchySyncKey, "0")
	e.End()
	a := em.Answer(dev, quarantine.Request{Command: eas.CmdFolderSync, Version: eas.V140, Body: e.Bytes()})
	fmt.Println("FolderSync forwarded:", a.Forward)

	casAnswer := eas.AppendFolderSyncResponse(nil, 1, "1", []eas.Folder{{ServerID: "5", DisplayName: "Inbox", Type: eas.FolderTypeInbox}})
	known, _ := em.LearnFolderSync([]byte(dev.User), []byte(dev.DeviceID), casAnswer)
	fmt.Println("Inbox known:", known)

	e.Reset(nil)
	e.Header()
	e.Start(wbxml.PingPing)
	e.Element(wbxml.PingHeartbeatInterval, "480")
	e.Start(wbxml.PingFolders)
	e.Start(wbxml.PingFolder)
	e.Element(wbxml.PingId, "5")
	e.Element(wbxml.PingClass, "Email")
	e.End()
	e.End()
	e.End()
	a = em.Answer(dev, quarantine.Request{Command: eas.CmdPing, Version: eas.V140, Body: e.Bytes()})
	var info eas.PingInfo
	_ = eas.ReadPing(a.Body, &info)
	fmt.Println("Ping status:", info.Status, "folder:", info.Folders[0].ID)
	// Output:
	// FolderSync forwarded: true
	// Inbox known: true
	// Ping status: 2 folder: 5
}
