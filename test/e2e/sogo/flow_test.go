package sogo_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

const (
	requestTimeout = 60 * time.Second
	syncWindow     = 10 // smaller than the seed, so Sync has to page with MoreAvailable
	maxSyncRounds  = 50
)

// mailbox is what a phone knows after syncing its Inbox.
type mailbox struct {
	inbox   string            // CollectionId of the Inbox, from FolderSync
	syncKey string            // current Sync key of the Inbox
	items   map[string]string // ServerId → Subject
}

// options checks the capability discovery answer.
func (c *easClient) checkOptions(ctx context.Context) error {
	resp, err := c.options(ctx)
	if err != nil {
		return fmt.Errorf("OPTIONS: %w", err)
	}
	if resp.code != http.StatusOK {
		return fmt.Errorf("OPTIONS: %s", resp.dump())
	}
	versions := strings.Split(strings.ReplaceAll(resp.header.Get("MS-ASProtocolVersions"), " ", ""), ",")
	if !slices.Contains(versions, c.version.String()) {
		return fmt.Errorf("OPTIONS: MS-ASProtocolVersions %q lacks %s", resp.header.Get("MS-ASProtocolVersions"), c.version)
	}
	commands := strings.Split(strings.ReplaceAll(resp.header.Get("MS-ASProtocolCommands"), " ", ""), ",")
	// SOGo implements Provision but does not list it; the other four it lists.
	for _, want := range []string{"Settings", "FolderSync", "Sync", "Ping"} {
		if !slices.Contains(commands, want) {
			return fmt.Errorf("OPTIONS: MS-ASProtocolCommands %q lacks %s", resp.header.Get("MS-ASProtocolCommands"), want)
		}
	}
	return nil
}

// provision runs MS-ASPROV's two phases when the server hands out a policy
// key; a server without a policy for the device (SOGo answers policy Status
// 2 and no key) ends after the first.
func (c *easClient) provision(ctx context.Context) (eas.ProvisionInfo, error) {
	var info eas.ProvisionInfo
	resp, err := c.post(ctx, eas.CmdProvision, provisionBody(c.version, nil))
	if err != nil {
		return info, fmt.Errorf("Provision: %w", err)
	}
	if err := expectWBXML("Provision", resp); err != nil {
		return info, err
	}
	if err := eas.ReadProvision(resp.body, &info, nil); err != nil {
		return info, fmt.Errorf("Provision: %v\n%s", err, resp.dump())
	}
	if info.ProvisionStatus != 1 {
		return info, fmt.Errorf("Provision: Status %d, want 1\n%s", info.ProvisionStatus, resp.dump())
	}
	if info.PolicyType != eas.PolicyTypeWBXML {
		return info, fmt.Errorf("Provision: PolicyType %q, want %s\n%s", info.PolicyType, eas.PolicyTypeWBXML, resp.dump())
	}
	switch info.Status {
	case 2: // no policy for this client: nothing to acknowledge
		if info.HasPolicyKey {
			return info, fmt.Errorf("Provision: policy Status 2 with a PolicyKey\n%s", resp.dump())
		}
		return info, nil
	case 1:
		if !info.HasPolicyKey {
			return info, fmt.Errorf("Provision: policy Status 1 without a PolicyKey\n%s", resp.dump())
		}
	default:
		return info, fmt.Errorf("Provision: policy Status %d\n%s", info.Status, resp.dump())
	}
	temp := info.PolicyKey
	c.policyKey, c.hasPolicyKey = temp, true
	resp, err = c.post(ctx, eas.CmdProvision, provisionBody(c.version, &temp))
	if err != nil {
		return info, fmt.Errorf("Provision acknowledgement: %w", err)
	}
	if err := expectWBXML("Provision acknowledgement", resp); err != nil {
		return info, err
	}
	if err := eas.ReadProvision(resp.body, &info, nil); err != nil {
		return info, fmt.Errorf("Provision acknowledgement: %v\n%s", err, resp.dump())
	}
	if info.ProvisionStatus != 1 || info.Status != 1 || !info.HasPolicyKey {
		return info, fmt.Errorf("Provision acknowledgement: Status %d, policy Status %d, key %v\n%s",
			info.ProvisionStatus, info.Status, info.HasPolicyKey, resp.dump())
	}
	c.policyKey = info.PolicyKey
	return info, nil
}

// settings sends DeviceInformation (MS-ASCMD §2.2.3.45) and checks the
// answer's Status.
func (c *easClient) settings(ctx context.Context) error {
	body := settingsBody(c.version)
	var sent eas.DeviceInfo
	if found, err := eas.ReadDeviceInfo(body, &sent); err != nil || !found {
		return fmt.Errorf("Settings: our own DeviceInformation does not read back: found=%v err=%v", found, err)
	}
	resp, err := c.post(ctx, eas.CmdSettings, body)
	if err != nil {
		return fmt.Errorf("Settings: %w", err)
	}
	if err := expectWBXML("Settings", resp); err != nil {
		return err
	}
	root, err := parseTree(resp.body)
	if err != nil {
		return fmt.Errorf("Settings: %v\n%s", err, resp.dump())
	}
	if root.tag != wbxml.SettingsSettings || root.child(wbxml.SettingsStatus).int() != 1 {
		return fmt.Errorf("Settings: want Settings > Status 1\n%s", resp.dump())
	}
	// MS-ASCMD §2.2.3.45 has the server answer DeviceInformation > Status;
	// SOGo answers only the command's Status, so check it when present.
	if di := root.child(wbxml.SettingsDeviceInformation); di != nil {
		if s := di.child(wbxml.SettingsStatus).int(); s != 1 {
			return fmt.Errorf("Settings: DeviceInformation > Status %d, want 1\n%s", s, resp.dump())
		}
	}
	return nil
}

// folderSync fetches the hierarchy and returns the Inbox.
func (c *easClient) folderSync(ctx context.Context) (eas.Folder, error) {
	fs, err := c.folderSyncAll(ctx)
	if err != nil {
		return eas.Folder{}, err
	}
	inbox, _ := fs.Inbox()
	return inbox, nil
}

// folderSyncAll fetches the whole hierarchy (SyncKey 0) and checks that it
// names an Inbox (Type 2).
func (c *easClient) folderSyncAll(ctx context.Context) (*eas.FolderSyncInfo, error) {
	resp, err := c.post(ctx, eas.CmdFolderSync, folderSyncBody("0"))
	if err != nil {
		return nil, fmt.Errorf("FolderSync: %w", err)
	}
	if err := expectWBXML("FolderSync", resp); err != nil {
		return nil, err
	}
	fs := new(eas.FolderSyncInfo)
	if err := eas.ReadFolderSync(resp.body, fs); err != nil {
		return nil, fmt.Errorf("FolderSync: %v\n%s", err, resp.dump())
	}
	if fs.Status != 1 || fs.SyncKey == "" || fs.SyncKey == "0" {
		return nil, fmt.Errorf("FolderSync: Status %d, SyncKey %q\n%s", fs.Status, fs.SyncKey, resp.dump())
	}
	inbox, ok := fs.Inbox()
	if !ok || inbox.ServerID == "" {
		return nil, fmt.Errorf("FolderSync: no Inbox (Type 2) among %d folders\n%s", len(fs.Folders), resp.dump())
	}
	return fs, nil
}

// syncResult is one Sync response for one collection.
type syncResult struct {
	syncKey string
	more    bool
	adds    map[string]string // ServerId → Subject
	deletes []string
	changes int
	// responses: the server's answers to the client's own commands, by
	// "<element> <ServerId or ClientId>" ("AirSync:Change 12") → Status.
	responses map[string]int
}

// syncStatusError is a Sync answer with a Status other than 1: top-level
// (the whole request failed) or the collection's.
type syncStatusError struct {
	topLevel bool
	status   int
	dump     string
}

func (e *syncStatusError) Error() string {
	where := "Collection Status"
	if e.topLevel {
		where = "top-level Status"
	}
	return fmt.Sprintf("Sync: %s %d, want 1\n%s", where, e.status, e.dump)
}

func (c *easClient) syncOnce(ctx context.Context, key, collection string) (syncResult, error) {
	return c.syncRequest(ctx, key, collection, syncBody(c.version, key, collection, syncWindow))
}

// syncRequest sends one Sync body for collection and reads the answer. A
// Status other than 1 is a *syncStatusError.
func (c *easClient) syncRequest(ctx context.Context, key, collection string, body []byte) (syncResult, error) {
	var r syncResult
	resp, err := c.post(ctx, eas.CmdSync, body)
	if err != nil {
		return r, fmt.Errorf("Sync: %w", err)
	}
	if resp.code == http.StatusOK && len(resp.body) == 0 {
		// An empty response means "nothing changed" (MS-ASCMD §2.2.1.21).
		return syncResult{syncKey: key}, nil
	}
	if err := expectWBXML("Sync", resp); err != nil {
		return r, err
	}
	root, err := parseTree(resp.body)
	if err != nil {
		return r, fmt.Errorf("Sync: %v\n%s", err, resp.dump())
	}
	if s := root.child(wbxml.AirSyncStatus); s != nil {
		return r, &syncStatusError{topLevel: true, status: s.int(), dump: resp.dump()}
	}
	col := root.path(wbxml.AirSyncCollections, wbxml.AirSyncCollection)
	if col == nil {
		return r, fmt.Errorf("Sync: no Collection\n%s", resp.dump())
	}
	if st := col.child(wbxml.AirSyncStatus).int(); st != 1 {
		return r, &syncStatusError{status: st, dump: resp.dump()}
	}
	if id := col.child(wbxml.AirSyncCollectionId).str(); id != collection {
		return r, fmt.Errorf("Sync: CollectionId %q, want %q\n%s", id, collection, resp.dump())
	}
	r.syncKey = col.child(wbxml.AirSyncSyncKey).str()
	if r.syncKey == "" {
		return r, fmt.Errorf("Sync: no SyncKey\n%s", resp.dump())
	}
	r.more = col.child(wbxml.AirSyncMoreAvailable) != nil
	r.adds = map[string]string{}
	cmds := col.child(wbxml.AirSyncCommands)
	for _, add := range cmds.all(wbxml.AirSyncAdd) {
		id := add.child(wbxml.AirSyncServerId).str()
		if id == "" {
			return r, fmt.Errorf("Sync: Add without ServerId\n%s", resp.dump())
		}
		r.adds[id] = add.path(wbxml.AirSyncApplicationData, wbxml.EmailSubject).str()
	}
	for _, del := range append(cmds.all(wbxml.AirSyncDelete), cmds.all(wbxml.AirSyncSoftDelete)...) {
		r.deletes = append(r.deletes, del.child(wbxml.AirSyncServerId).str())
	}
	r.changes = len(cmds.all(wbxml.AirSyncChange))
	r.responses = map[string]int{}
	resps := col.child(wbxml.AirSyncResponses)
	for _, kind := range []wbxml.Tag{wbxml.AirSyncAdd, wbxml.AirSyncChange, wbxml.AirSyncDelete, wbxml.AirSyncFetch} {
		for _, it := range resps.all(kind) {
			id := it.child(wbxml.AirSyncServerId).str()
			if kind == wbxml.AirSyncAdd {
				id = it.child(wbxml.AirSyncClientId).str()
			}
			r.responses[kind.String()+" "+id] = it.child(wbxml.AirSyncStatus).int()
		}
	}
	return r, nil
}

// syncInbox pages through the Inbox until a round brings nothing. Stopping
// at the first round without MoreAvailable is not enough for SOGo: its mail
// SyncKey ("21-26") still marks the last window as unconfirmed, so a Ping
// sent then answers "changes" at once; one more round confirms it ("26-26").
// Phones behave the same way: they Sync again after every Status 2.
func (c *easClient) syncInbox(ctx context.Context, m *mailbox) (rounds int, err error) {
	if m.syncKey == "" {
		r, err := c.syncOnce(ctx, "0", m.inbox)
		if err != nil {
			return 0, fmt.Errorf("initial %w", err)
		}
		if len(r.adds) != 0 {
			return 0, fmt.Errorf("initial Sync (SyncKey 0) returned %d items, want none", len(r.adds))
		}
		m.syncKey = r.syncKey
		m.items = map[string]string{}
	}
	for rounds = 1; rounds <= maxSyncRounds; rounds++ {
		r, err := c.syncOnce(ctx, m.syncKey, m.inbox)
		if err != nil {
			return rounds, fmt.Errorf("round %d: %w", rounds, err)
		}
		for id, subject := range r.adds {
			if _, dup := m.items[id]; dup {
				return rounds, fmt.Errorf("round %d: ServerId %s added twice", rounds, id)
			}
			m.items[id] = subject
		}
		for _, id := range r.deletes {
			delete(m.items, id)
		}
		m.syncKey = r.syncKey
		empty := len(r.adds)+len(r.deletes)+r.changes == 0
		if r.more && empty {
			return rounds, fmt.Errorf("round %d: MoreAvailable without any command", rounds)
		}
		if !r.more && empty {
			return rounds, nil
		}
	}
	return rounds, fmt.Errorf("still MoreAvailable after %d rounds", maxSyncRounds)
}

// ping sends a Ping for the Inbox and returns its answer and how long it
// was held.
func (c *easClient) ping(ctx context.Context, heartbeat int, inbox string) (eas.PingInfo, time.Duration, error) {
	var info eas.PingInfo
	ctx, cancel := context.WithTimeout(ctx, time.Duration(heartbeat)*time.Second+requestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := c.post(ctx, eas.CmdPing, pingBody(heartbeat, inbox))
	held := time.Since(start)
	if err != nil {
		return info, held, fmt.Errorf("Ping (after %v): %w", held.Round(time.Millisecond), err)
	}
	if err := expectWBXML("Ping", resp); err != nil {
		return info, held, err
	}
	if err := eas.ReadPing(resp.body, &info); err != nil {
		return info, held, fmt.Errorf("Ping: %v\n%s", err, resp.dump())
	}
	return info, held, nil
}

// expectNewMail checks a Ping answer that must report the Inbox changed.
func expectNewMail(info eas.PingInfo, inbox string) error {
	if info.Status != eas.PingStatusChanges {
		return fmt.Errorf("Ping: Status %d, want %d (changes)", info.Status, eas.PingStatusChanges)
	}
	for _, f := range info.Folders {
		if f.ID == inbox {
			return nil
		}
	}
	return fmt.Errorf("Ping: Status 2 but the Inbox %s is not among the changed folders %v", inbox, info.Folders)
}

// checkCount compares what the phone holds with what Dovecot holds.
func checkCount(ctx context.Context, e *sogoEnv, user string, m *mailbox) error {
	want, err := e.inboxCount(ctx, user)
	if err != nil {
		return err
	}
	if len(m.items) != want {
		return fmt.Errorf("synced %d messages, the mailbox of %s holds %d", len(m.items), user, want)
	}
	for id, subject := range m.items {
		if !strings.HasPrefix(subject, "easgate e2e ") {
			return fmt.Errorf("item %s has Subject %q, want one of the seeded or delivered messages", id, subject)
		}
	}
	return nil
}

// setUp runs a phone's first contact: OPTIONS, Provision, Settings with
// DeviceInformation, FolderSync, and the Inbox's initial Sync.
func setUp(t *testing.T, ctx context.Context, e *sogoEnv, c *easClient) *mailbox {
	t.Helper()
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s (user %s, device %s, %s, base64 %v): %v", name, c.user, c.deviceID, c.version, c.base64, err)
		}
	}
	step("OPTIONS", c.checkOptions(ctx))
	_, err := c.provision(ctx)
	step("Provision", err)
	step("Settings", c.settings(ctx))
	inbox, err := c.folderSync(ctx)
	step("FolderSync", err)
	m := &mailbox{inbox: inbox.ServerID}
	rounds, err := c.syncInbox(ctx, m)
	step("Sync", err)
	step("message count", checkCount(ctx, e, c.user, m))
	if e.Seed > syncWindow && rounds < 2 {
		t.Errorf("Sync took %d round(s) for %d messages with WindowSize %d: MoreAvailable paging was not exercised",
			rounds, len(m.items), syncWindow)
	}
	t.Logf("%s %s base64=%v: Inbox %s, %d messages in %d Sync rounds", c.user, c.version, c.base64, m.inbox, len(m.items), rounds)
	return m
}
