package eas

// Command is an EAS command. The numeric values are the command codes of the
// MS-ASHTTP base64 query (§2.2.1.1.1.1.2), so a base64 request's command byte
// converts directly. Commands that have no base64 code (the legacy 1.0/2.x
// commands, Find and any command easgate does not know) get values from 64 up.
type Command uint8

// Command codes from MS-ASHTTP §2.2.1.1.1.1.2. Codes 5–8 are unused.
const (
	CmdSync              Command = 0
	CmdSendMail          Command = 1
	CmdSmartForward      Command = 2
	CmdSmartReply        Command = 3
	CmdGetAttachment     Command = 4
	CmdFolderSync        Command = 9
	CmdFolderCreate      Command = 10
	CmdFolderDelete      Command = 11
	CmdFolderUpdate      Command = 12
	CmdMoveItems         Command = 13
	CmdGetItemEstimate   Command = 14
	CmdMeetingResponse   Command = 15
	CmdSearch            Command = 16
	CmdSettings          Command = 17
	CmdPing              Command = 18
	CmdItemOperations    Command = 19
	CmdProvision         Command = 20
	CmdResolveRecipients Command = 21
	CmdValidateCert      Command = 22

	// Commands without a base64 code.
	CmdFind             Command = 64 // 16.1
	CmdGetHierarchy     Command = 65 // legacy (1.0/2.x)
	CmdCreateCollection Command = 66 // legacy
	CmdDeleteCollection Command = 67 // legacy
	CmdMoveCollection   Command = 68 // legacy
	CmdNotify           Command = 69 // legacy

	// CmdOptions is the HTTP OPTIONS request (capability discovery); it has
	// no Cmd parameter.
	CmdOptions Command = 254
	// CmdUnknown is a well-formed command name or code easgate does not
	// know. It is passed through and logged, never treated as an error.
	CmdUnknown Command = 255
)

var commandNames = [...]string{
	CmdSync:              "Sync",
	CmdSendMail:          "SendMail",
	CmdSmartForward:      "SmartForward",
	CmdSmartReply:        "SmartReply",
	CmdGetAttachment:     "GetAttachment",
	CmdFolderSync:        "FolderSync",
	CmdFolderCreate:      "FolderCreate",
	CmdFolderDelete:      "FolderDelete",
	CmdFolderUpdate:      "FolderUpdate",
	CmdMoveItems:         "MoveItems",
	CmdGetItemEstimate:   "GetItemEstimate",
	CmdMeetingResponse:   "MeetingResponse",
	CmdSearch:            "Search",
	CmdSettings:          "Settings",
	CmdPing:              "Ping",
	CmdItemOperations:    "ItemOperations",
	CmdProvision:         "Provision",
	CmdResolveRecipients: "ResolveRecipients",
	CmdValidateCert:      "ValidateCert",
	CmdFind:              "Find",
	CmdGetHierarchy:      "GetHierarchy",
	CmdCreateCollection:  "CreateCollection",
	CmdDeleteCollection:  "DeleteCollection",
	CmdMoveCollection:    "MoveCollection",
	CmdNotify:            "Notify",
	CmdOptions:           "OPTIONS",
	CmdUnknown:           "Unknown",
}

// String returns the command's name as written in the plain query ("Sync").
func (c Command) String() string {
	if int(c) < len(commandNames) && commandNames[c] != "" {
		return commandNames[c]
	}
	return "Unknown"
}

// Known reports whether c is a command easgate knows by name.
func (c Command) Known() bool {
	return c != CmdUnknown && int(c) < len(commandNames) && commandNames[c] != ""
}

// CommandFromCode converts a base64-query command byte. Codes that are not
// assigned give CmdUnknown and ok=false.
func CommandFromCode(code byte) (Command, bool) {
	if code <= byte(CmdValidateCert) && commandNames[code] != "" {
		return Command(code), true
	}
	return CmdUnknown, false
}

// ParseCommand converts a plain-query Cmd value. Matching is exact, as in
// Exchange (ASCII case-insensitive matching is also accepted because some
// clients send "sync"). It does not allocate. Unknown names give CmdUnknown
// and ok=false.
func ParseCommand(name []byte) (Command, bool) {
	for i := range commandNames {
		n := commandNames[i]
		if n == "" || Command(i) == CmdOptions || Command(i) == CmdUnknown {
			continue
		}
		if equalFoldASCII(name, n) {
			return Command(i), true
		}
	}
	return CmdUnknown, false
}

// equalFoldASCII reports whether b equals s ignoring ASCII case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
