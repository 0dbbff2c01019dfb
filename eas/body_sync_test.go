package eas

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/easgate/easgate/eas/wbxml"
)

// syncBodyOf encodes Sync > Collections > (what fn writes) > end, then the
// top-level elements tail writes (may be nil).
func syncBodyOf(t testing.TB, fn func(e *wbxml.Encoder), tail func(e *wbxml.Encoder)) []byte {
	t.Helper()
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	fn(&e)
	e.End()
	if tail != nil {
		tail(&e)
	}
	e.End()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	return e.Bytes()
}

// syncCol writes one Collection with the given key and id, and the
// commands (kind, id) that cmds lists.
func syncCol(e *wbxml.Encoder, key, id string, cmds ...SyncCommand) {
	e.Start(wbxml.AirSyncCollection)
	e.Element(wbxml.AirSyncSyncKey, key)
	e.Element(wbxml.AirSyncCollectionId, id)
	if len(cmds) > 0 {
		e.Start(wbxml.AirSyncCommands)
		for _, c := range cmds {
			e.Start(c.Kind.Tag())
			if c.Class != "" {
				e.Element(wbxml.AirSyncClass, c.Class)
			}
			if c.Kind == SyncAdd {
				e.Element(wbxml.AirSyncClientId, c.ID)
			} else {
				e.Element(wbxml.AirSyncServerId, c.ID)
			}
			e.End()
		}
		e.End()
	}
	e.End()
}

// TestReadSyncBounds checks the counts and lengths ReadSync accepts, and
// that one more fails with BodyTooLong naming the element at its offset,
// without the value in the message.
func TestReadSyncBounds(t *testing.T) {
	long := strings.Repeat("A", MaxSyncIDLen)
	deletes := func(n int) []SyncCommand {
		out := make([]SyncCommand, n)
		for i := range out {
			out[i] = SyncCommand{Kind: SyncDelete, ID: "1"}
		}
		return out
	}
	tests := []struct {
		name string
		// build writes the collections and returns the offset the error
		// must name (ignored when el is "").
		build func(e *wbxml.Encoder) int
		el    string
		check func(t *testing.T, s *SyncInfo)
	}{
		{name: "512 collections", build: func(e *wbxml.Encoder) int {
			for i := 0; i < MaxSyncCollections; i++ {
				syncCol(e, "1", fmt.Sprint(i))
			}
			return 0
		}, check: func(t *testing.T, s *SyncInfo) {
			if len(s.Collections) != MaxSyncCollections || s.Collections[511].CollectionID != "511" {
				t.Fatalf("%d collections", len(s.Collections))
			}
		}},
		{name: "513 collections", el: "AirSync:Collection", build: func(e *wbxml.Encoder) int {
			for i := 0; i < MaxSyncCollections; i++ {
				syncCol(e, "1", fmt.Sprint(i))
			}
			off := len(e.Bytes())
			syncCol(e, "1", "x")
			return off
		}},
		{name: "10000 commands in two collections", build: func(e *wbxml.Encoder) int {
			syncCol(e, "1", "5", deletes(MaxSyncCommands/2)...)
			syncCol(e, "1", "6", deletes(MaxSyncCommands/2)...)
			return 0
		}, check: func(t *testing.T, s *SyncInfo) {
			if len(s.Collections) != 2 || len(s.Collections[0].Commands)+len(s.Collections[1].Commands) != MaxSyncCommands {
				t.Fatalf("commands not all read")
			}
		}},
		{name: "10001 commands in two collections", el: "AirSync:Add", build: func(e *wbxml.Encoder) int {
			syncCol(e, "1", "5", deletes(MaxSyncCommands/2)...)
			e.Start(wbxml.AirSyncCollection)
			e.Start(wbxml.AirSyncCommands)
			for i := 0; i < MaxSyncCommands/2; i++ {
				e.Start(wbxml.AirSyncFetch)
				e.Element(wbxml.AirSyncServerId, "2")
				e.End()
			}
			off := len(e.Bytes())
			e.Start(wbxml.AirSyncAdd)
			e.Element(wbxml.AirSyncClientId, "c")
			e.End()
			e.End()
			e.End()
			return off
		}},
		{name: "ids of 256 bytes", build: func(e *wbxml.Encoder) int {
			e.Start(wbxml.AirSyncCollection)
			e.Element(wbxml.AirSyncClass, long)
			e.End()
			syncCol(e, long, long, SyncCommand{Kind: SyncAdd, ID: long, Class: long}, SyncCommand{Kind: SyncChange, ID: long})
			return 0
		}, check: func(t *testing.T, s *SyncInfo) {
			c := s.Collections[1]
			if s.Collections[0].Class != long || c.SyncKey != long || c.CollectionID != long ||
				c.Commands[0] != (SyncCommand{Kind: SyncAdd, ID: long, Class: long}) || c.Commands[1].ID != long {
				t.Fatalf("%+v", s.Collections)
			}
		}},
	}
	for _, el := range []wbxml.Tag{wbxml.AirSyncSyncKey, wbxml.AirSyncCollectionId, wbxml.AirSyncClass} {
		tests = append(tests, struct {
			name  string
			build func(e *wbxml.Encoder) int
			el    string
			check func(t *testing.T, s *SyncInfo)
		}{name: "257-byte " + el.Name(), el: el.String(), build: func(e *wbxml.Encoder) int {
			e.Start(wbxml.AirSyncCollection)
			off := len(e.Bytes()) + 1 // after the tag: where the value starts
			e.Element(el, long+"B")
			e.End()
			return off
		}})
	}
	for _, k := range []SyncCommandKind{SyncAdd, SyncChange, SyncDelete, SyncFetch} {
		idTag := wbxml.AirSyncServerId
		if k == SyncAdd {
			idTag = wbxml.AirSyncClientId
		}
		for _, el := range []wbxml.Tag{idTag, wbxml.AirSyncClass} {
			tests = append(tests, struct {
				name  string
				build func(e *wbxml.Encoder) int
				el    string
				check func(t *testing.T, s *SyncInfo)
			}{name: "257-byte " + el.Name() + " in " + k.String(), el: el.String(), build: func(e *wbxml.Encoder) int {
				e.Start(wbxml.AirSyncCollection)
				e.Start(wbxml.AirSyncCommands)
				e.Start(k.Tag())
				off := len(e.Bytes()) + 1
				e.Element(el, long+"B")
				e.End()
				e.End()
				e.End()
				return off
			}})
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			off := 0
			body := syncBodyOf(t, func(e *wbxml.Encoder) { off = tc.build(e) }, nil)
			var s SyncInfo
			err := ReadSync(body, &s)
			if tc.el == "" {
				if err != nil {
					t.Fatalf("ReadSync: %v", err)
				}
				tc.check(t, &s)
				return
			}
			be, ok := err.(*BodyError)
			if !ok || be.Kind != BodyTooLong || be.Element != tc.el || be.Offset != off || be.Command != "Sync" {
				t.Fatalf("err = %#v, want BodyTooLong at %s offset %d", err, tc.el, off)
			}
			if strings.Contains(err.Error(), "AAAA") {
				t.Fatalf("error shows the value: %v", err)
			}
		})
	}
}

// TestReadSyncOptions: BodyPreference Types of every Options element, in
// order, at most MaxSyncBodyTypes of them; each must be a number.
func TestReadSyncOptions(t *testing.T) {
	pref := func(e *wbxml.Encoder, typ string) {
		e.Start(wbxml.AirSyncBaseBodyPreference)
		e.Element(wbxml.AirSyncBaseTruncationSize, "512")
		e.Element(wbxml.AirSyncBaseType, typ)
		e.End()
	}
	tests := []struct {
		name  string
		types [][]string // per Options element
		want  []int
		kind  BodyErrorKind
	}{
		{name: "none", types: [][]string{{}}},
		{name: "one", types: [][]string{{"2"}}, want: []int{2}},
		{name: "two Options", types: [][]string{{"2", "4"}, {"1"}}, want: []int{2, 4, 1}},
		{name: "nine kept as eight", types: [][]string{{"1", "2", "3", "4", "1", "2", "3", "4", "2"}}, want: []int{1, 2, 3, 4, 1, 2, 3, 4}},
		{name: "not a number", types: [][]string{{"html"}}, kind: BodyBadValue},
		{name: "ninth not a number", types: [][]string{{"1", "2", "3", "4", "1", "2", "3", "4", "x"}}, kind: BodyBadValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := syncBodyOf(t, func(e *wbxml.Encoder) {
				e.Start(wbxml.AirSyncCollection)
				e.Element(wbxml.AirSyncSyncKey, "1")
				for _, opts := range tc.types {
					e.Start(wbxml.AirSyncOptions)
					e.Element(wbxml.AirSyncFilterType, "3")
					for _, typ := range opts {
						pref(e, typ)
					}
					e.Start(wbxml.AirSyncBaseBodyPartPreference)
					e.Element(wbxml.AirSyncBaseType, "2")
					e.End()
					e.End()
				}
				e.End()
			}, nil)
			s := SyncInfo{Collections: []SyncCollection{{BodyTypes: []int{7, 7, 7}}}}
			err := ReadSync(body, &s)
			if bodyErrKind(err) != tc.kind || (tc.kind == 0 && err != nil) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if err != nil {
				return
			}
			got := s.Collections[0].BodyTypes
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("BodyTypes %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReadSyncGetChanges: absent, 0 and anything else are three answers.
func TestReadSyncGetChanges(t *testing.T) {
	for _, tc := range []struct {
		name, val string
		absent    bool
		want      SyncGetChanges
	}{
		{name: "absent", absent: true, want: GetChangesAbsent},
		{name: "empty element", want: GetChangesYes},
		{name: "1", val: "1", want: GetChangesYes},
		{name: "0", val: "0", want: GetChangesNo},
		{name: "0 with spaces", val: " 0\r\n", want: GetChangesNo},
		{name: "00", val: "00", want: GetChangesYes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := syncBodyOf(t, func(e *wbxml.Encoder) {
				e.Start(wbxml.AirSyncCollection)
				e.Element(wbxml.AirSyncSyncKey, "1")
				switch {
				case tc.absent:
				case tc.val == "":
					e.Empty(wbxml.AirSyncGetChanges)
				default:
					e.Element(wbxml.AirSyncGetChanges, tc.val)
				}
				e.End()
			}, nil)
			s := SyncInfo{Collections: []SyncCollection{{GetChanges: GetChangesNo}}}
			if err := ReadSync(body, &s); err != nil {
				t.Fatal(err)
			}
			if got := s.Collections[0].GetChanges; got != tc.want {
				t.Fatalf("GetChanges %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReadSyncCommands: the id element depends on the kind, other
// children (ApplicationData, a ClientId in a Change, SoftDelete) are
// skipped, and an empty Commands still sets HasCommands.
func TestReadSyncCommands(t *testing.T) {
	body := syncBodyOf(t, func(e *wbxml.Encoder) {
		e.Start(wbxml.AirSyncCollection)
		e.Start(wbxml.AirSyncCommands)
		e.Start(wbxml.AirSyncAdd) // a server's Add: ServerId, no ClientId
		e.Element(wbxml.AirSyncServerId, "5:1")
		e.Start(wbxml.AirSyncApplicationData)
		e.Element(wbxml.EmailSubject, "secret subject")
		e.End()
		e.End()
		e.Start(wbxml.AirSyncChange)
		e.Element(wbxml.AirSyncClientId, "c9")
		e.Element(wbxml.AirSyncServerId, "5:2")
		e.End()
		e.Start(wbxml.AirSyncSoftDelete)
		e.Element(wbxml.AirSyncServerId, "5:3")
		e.End()
		e.Empty(wbxml.AirSyncFetch)
		e.End()
		e.End()
		e.Start(wbxml.AirSyncCollection)
		e.Empty(wbxml.AirSyncCommands)
		e.End()
	}, nil)
	s := SyncInfo{Collections: []SyncCollection{{Commands: []SyncCommand{{Kind: SyncDelete, ID: "old", Class: "old"}}}}}
	if err := ReadSync(body, &s); err != nil {
		t.Fatal(err)
	}
	want := []SyncCollection{
		{HasCommands: true, Commands: []SyncCommand{{Kind: SyncAdd}, {Kind: SyncChange, ID: "5:2"}, {Kind: SyncFetch}}},
		{HasCommands: true},
	}
	if s.Collections[1].Commands != nil {
		t.Fatalf("empty Commands gave %v", s.Collections[1].Commands)
	}
	if !reflect.DeepEqual(s.Collections, want) {
		t.Fatalf("got %+v\nwant %+v", s.Collections, want)
	}
}

func TestReadSyncWaitPresence(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tail       func(e *wbxml.Encoder)
		wait, beat bool
	}{
		{name: "neither"},
		{name: "Wait 0", tail: func(e *wbxml.Encoder) { e.Element(wbxml.AirSyncWait, "0") }, wait: true},
		{name: "HeartbeatInterval 0", tail: func(e *wbxml.Encoder) { e.Element(wbxml.AirSyncHeartbeatInterval, "0") }, beat: true},
		{name: "both", tail: func(e *wbxml.Encoder) {
			e.Element(wbxml.AirSyncWait, "5")
			e.Element(wbxml.AirSyncHeartbeatInterval, "300")
		}, wait: true, beat: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := syncBodyOf(t, func(e *wbxml.Encoder) { syncCol(e, "1", "5") }, tc.tail)
			s := SyncInfo{HasWait: true, HasHeartbeatInterval: true}
			if err := ReadSync(body, &s); err != nil {
				t.Fatal(err)
			}
			if s.HasWait != tc.wait || s.HasHeartbeatInterval != tc.beat || s.Wait != 0 && !tc.wait {
				t.Fatalf("got %+v", s)
			}
		})
	}
}

// TestReadSyncRepeatedHold: a repeated Wait or HeartbeatInterval counts
// once, the first, in ReadSync as in ReadSyncHold (the fuzzer found them
// disagreeing on HeartbeatInterval 1 then 0: the seed is in
// testdata/fuzz/FuzzReadPing).
func TestReadSyncRepeatedHold(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tail       func(e *wbxml.Encoder)
		wait, beat int
		hold       int
	}{
		{name: "HeartbeatInterval 1 then 0", tail: func(e *wbxml.Encoder) {
			e.Element(wbxml.AirSyncHeartbeatInterval, "1")
			e.Element(wbxml.AirSyncHeartbeatInterval, "0")
		}, beat: 1, hold: 1},
		{name: "Wait 5 then 3", tail: func(e *wbxml.Encoder) {
			e.Element(wbxml.AirSyncWait, "5")
			e.Element(wbxml.AirSyncWait, "3")
		}, wait: 5, hold: 300},
		{name: "HeartbeatInterval 480, Wait 2, HeartbeatInterval 60", tail: func(e *wbxml.Encoder) {
			e.Element(wbxml.AirSyncHeartbeatInterval, "480")
			e.Element(wbxml.AirSyncWait, "2")
			e.Element(wbxml.AirSyncHeartbeatInterval, "60")
		}, wait: 2, beat: 480, hold: 480},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := syncBodyOf(t, func(e *wbxml.Encoder) { syncCol(e, "1", "5") }, tc.tail)
			var s SyncInfo
			if err := ReadSync(body, &s); err != nil {
				t.Fatal(err)
			}
			if s.Wait != tc.wait || s.HeartbeatInterval != tc.beat {
				t.Errorf("ReadSync: Wait %d HeartbeatInterval %d, want %d %d", s.Wait, s.HeartbeatInterval, tc.wait, tc.beat)
			}
			hold, ok, err := ReadSyncHold(body)
			if err != nil || !ok || hold != tc.hold {
				t.Errorf("ReadSyncHold: %d %v %v, want %d", hold, ok, err, tc.hold)
			}
		})
	}
}

func TestSyncCommandKind(t *testing.T) {
	for k, want := range map[SyncCommandKind]struct {
		tag  wbxml.Tag
		name string
	}{
		SyncAdd: {wbxml.AirSyncAdd, "Add"}, SyncChange: {wbxml.AirSyncChange, "Change"},
		SyncDelete: {wbxml.AirSyncDelete, "Delete"}, SyncFetch: {wbxml.AirSyncFetch, "Fetch"},
		0: {0, "SyncCommandKind(0)"}, 9: {0, "SyncCommandKind(9)"},
	} {
		if k.Tag() != want.tag || k.String() != want.name {
			t.Errorf("%d: Tag %v String %q, want %v %q", k, k.Tag(), k.String(), want.tag, want.name)
		}
		if want.tag != 0 && syncCommandKind(want.tag) != k {
			t.Errorf("syncCommandKind(%v) = %v", want.tag, syncCommandKind(want.tag))
		}
	}
	if GetChangesAbsent.String() != "absent" || GetChangesNo.String() != "no" || GetChangesYes.String() != "yes" ||
		SyncGetChanges(7).String() != "SyncGetChanges(7)" {
		t.Error("SyncGetChanges.String")
	}
	if syncCommandKind(wbxml.AirSyncSoftDelete) != 0 || syncCommandKind(0) != 0 {
		t.Error("syncCommandKind accepts a non-command")
	}
}

// TestReadSyncReuse: re-reading the same request into the same SyncInfo
// allocates nothing (collections, commands, body types and strings are
// reused).
func TestReadSyncReuse(t *testing.T) {
	if bodyRace {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	body := bodyFile(t, "sync_request_commands_141.wbxml")
	var s SyncInfo
	if err := ReadSync(body, &s); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := ReadSync(body, &s); err != nil || len(s.Collections[0].Commands) != 4 {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocs per re-read, want 0", n)
	}
}

func BenchmarkReadSyncCommands(b *testing.B) {
	var s SyncInfo
	benchBody(b, "sync_request_commands_141.wbxml", func(body []byte) {
		if err := ReadSync(body, &s); err != nil {
			b.Fatal(err)
		}
	})
}

// ExampleReadSync reads the client's commands of a Sync request.
func ExampleReadSync() {
	var e wbxml.Encoder
	e.Reset(nil)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	e.Start(wbxml.AirSyncCollection)
	e.Element(wbxml.AirSyncSyncKey, "42")
	e.Element(wbxml.AirSyncCollectionId, "5")
	e.Element(wbxml.AirSyncGetChanges, "0")
	e.Start(wbxml.AirSyncCommands)
	e.Start(wbxml.AirSyncChange)
	e.Element(wbxml.AirSyncServerId, "5:12")
	e.End()
	e.End()
	e.End()
	e.End()
	e.Element(wbxml.AirSyncWait, "10")
	e.End()

	var s SyncInfo
	if err := ReadSync(e.Bytes(), &s); err != nil {
		fmt.Println(err)
		return
	}
	c := s.Collections[0]
	fmt.Println(s.Wait, s.HasWait, c.CollectionID, c.SyncKey, c.GetChanges == GetChangesNo)
	for _, cmd := range c.Commands {
		fmt.Println(cmd.Kind, cmd.ID)
	}
	// Output:
	// 10 true 5 42 true
	// Change 5:12
}
