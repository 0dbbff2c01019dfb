package quarantine

import (
	"bytes"
	"errors"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// memStore is an in-memory policy.Store.
type memStore struct {
	mu   sync.Mutex
	data map[string]map[string][]byte
	fail error
}

func newMemStore() *memStore { return &memStore{data: map[string]map[string][]byte{}} }

func (s *memStore) Update(bucket string, puts map[string][]byte, deletes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	b := s.data[bucket]
	if b == nil {
		b = map[string][]byte{}
		s.data[bucket] = b
	}
	for k, v := range puts {
		b[k] = append([]byte(nil), v...)
	}
	for _, k := range deletes {
		delete(b, k)
	}
	return nil
}

func (s *memStore) ForEach(bucket string, fn func(k, v []byte) error) error {
	s.mu.Lock()
	b := s.data[bucket]
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		s.mu.Lock()
		v := b[k]
		s.mu.Unlock()
		if err := fn([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Get(bucket, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[bucket][key]
	return v, ok, nil
}

func (s *memStore) Close() error { return nil }

func (s *memStore) len(bucket string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data[bucket])
}

// node is a decoded WBXML element.
type node struct {
	Tag      wbxml.Tag
	Text     string
	Children []*node
}

// decode parses a WBXML body into a tree, failing the test on any error.
func decode(t testing.TB, body []byte) *node {
	t.Helper()
	n, err := decodeTree(body)
	if err != nil {
		t.Fatalf("decode %x: %v", body, err)
	}
	return n
}

func decodeTree(body []byte) (*node, error) {
	d := wbxml.NewDecoder(body)
	var stack []*node
	var root *node
	for {
		tok, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok.Kind {
		case wbxml.StartTag:
			n := &node{Tag: tok.Tag}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			} else {
				root = n
			}
			if tok.HasContent {
				stack = append(stack, n)
			}
		case wbxml.EndTag:
			stack = stack[:len(stack)-1]
		case wbxml.Text, wbxml.Opaque:
			stack[len(stack)-1].Text += string(tok.Data)
		}
	}
	if root == nil {
		return nil, errors.New("no root")
	}
	return root, nil
}

// find returns the first descendant along path (by tag).
func (n *node) find(path ...wbxml.Tag) *node {
	cur := n
	for _, t := range path {
		var next *node
		for _, c := range cur.Children {
			if c.Tag == t {
				next = c
				break
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// all returns the children with tag t.
func (n *node) all(t wbxml.Tag) []*node {
	var out []*node
	for _, c := range n.Children {
		if c.Tag == t {
			out = append(out, c)
		}
	}
	return out
}

func (n *node) text(path ...wbxml.Tag) string {
	if x := n.find(path...); x != nil {
		return x.Text
	}
	return ""
}

// xmlOf renders a body as indented XML for golden files.
func xmlOf(t testing.TB, body []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := wbxml.ToXML(&b, body, wbxml.XMLOptions{Indent: "  "}); err != nil {
		t.Fatalf("ToXML: %v", err)
	}
	return b.String()
}

// Request builders.

type col struct {
	key, id, class string
	getChanges     string // "" omits GetChanges
	bodyTypes      []int
	cmds           []eas.SyncCommand
}

func syncBody(cols []col, wait, hb int) []byte {
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	for _, c := range cols {
		e.Start(wbxml.AirSyncCollection)
		if c.class != "" {
			e.Element(wbxml.AirSyncClass, c.class)
		}
		e.Element(wbxml.AirSyncSyncKey, c.key)
		e.Element(wbxml.AirSyncCollectionId, c.id)
		if c.getChanges != "" {
			e.Element(wbxml.AirSyncGetChanges, c.getChanges)
		}
		e.Element(wbxml.AirSyncWindowSize, "25")
		if len(c.bodyTypes) > 0 {
			e.Start(wbxml.AirSyncOptions)
			e.Element(wbxml.AirSyncFilterType, "3")
			for _, bt := range c.bodyTypes {
				e.Start(wbxml.AirSyncBaseBodyPreference)
				e.Element(wbxml.AirSyncBaseType, itoa(bt))
				e.Element(wbxml.AirSyncBaseTruncationSize, "200000")
				e.End()
			}
			e.End()
		}
		if len(c.cmds) > 0 {
			e.Start(wbxml.AirSyncCommands)
			for _, cmd := range c.cmds {
				e.Start(cmd.Kind.Tag())
				if cmd.Class != "" {
					e.Element(wbxml.AirSyncClass, cmd.Class)
				}
				if cmd.Kind == eas.SyncAdd {
					e.Element(wbxml.AirSyncClientId, cmd.ID)
				} else {
					e.Element(wbxml.AirSyncServerId, cmd.ID)
				}
				if cmd.Kind == eas.SyncAdd || cmd.Kind == eas.SyncChange {
					e.Start(wbxml.AirSyncApplicationData)
					e.Element(wbxml.EmailRead, "1")
					e.End()
				}
				e.End()
			}
			e.End()
		}
		e.End()
	}
	e.End()
	if wait > 0 {
		e.Element(wbxml.AirSyncWait, itoa(wait))
	}
	if hb > 0 {
		e.Element(wbxml.AirSyncHeartbeatInterval, itoa(hb))
	}
	e.End()
	if e.Err() != nil {
		panic(e.Err())
	}
	return e.Bytes()
}

func pingBody(hb int, folders ...string) []byte {
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.PingPing)
	if hb > 0 {
		e.Element(wbxml.PingHeartbeatInterval, itoa(hb))
	}
	if len(folders) > 0 {
		e.Start(wbxml.PingFolders)
		for _, f := range folders {
			e.Start(wbxml.PingFolder)
			e.Element(wbxml.PingId, f)
			e.Element(wbxml.PingClass, "Email")
			e.End()
		}
		e.End()
	}
	e.End()
	return e.Bytes()
}

func estimateBody(v14 bool, cols ...[2]string) []byte {
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.ItemEstimateGetItemEstimate)
	e.Start(wbxml.ItemEstimateCollections)
	for _, c := range cols {
		e.Start(wbxml.ItemEstimateCollection)
		if v14 {
			e.Element(wbxml.AirSyncSyncKey, c[0])
			e.Element(wbxml.ItemEstimateCollectionId, c[1])
		} else {
			e.Element(wbxml.ItemEstimateClass, "Email")
			e.Element(wbxml.ItemEstimateCollectionId, c[1])
			e.Element(wbxml.AirSyncFilterType, "3")
			e.Element(wbxml.AirSyncSyncKey, c[0])
		}
		e.End()
	}
	e.End()
	e.End()
	return e.Bytes()
}

func folderSyncRequest(key string) []byte {
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.FolderHierarchyFolderSync)
	e.Element(wbxml.FolderHierarchySyncKey, key)
	e.End()
	return e.Bytes()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

var testTime = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

// newTestEmulator returns an Emulator with a fixed clock and key prefix.
func newTestEmulator(t testing.TB, st *memStore) *Emulator {
	t.Helper()
	var opts Options
	if st != nil {
		opts.Store = st
	}
	n, err := ParseNotice(NoticeConfig{From: "IT Service Desk <it@corp.example.com>", EnrollURL: "https://portal.example.com/enroll",
		Subject: "Approve {{.Model}} for {{.User}}"}, "default", DefaultTemplate)
	if err != nil {
		t.Fatal(err)
	}
	opts.Notice = n
	opts.Now = func() time.Time { return testTime }
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.prefix = func() string { return "Qtest" }
	return e
}

var android = Device{User: "jdoe@corp.example.com", DeviceID: "androidc1957925", DeviceType: "Android",
	Model: "SM-G991B", Client: "Gmail", OS: "Android 14"}
