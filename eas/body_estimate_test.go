package eas

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/easgate/easgate/eas/wbxml"
)

func TestReadGetItemEstimate(t *testing.T) {
	estimate := func(fn func(e *wbxml.Encoder)) []byte {
		var e wbxml.Encoder
		e.Reset(nil)
		e.Header()
		e.Start(wbxml.ItemEstimateGetItemEstimate)
		fn(&e)
		e.End()
		return e.Bytes()
	}
	// oneCollection is a request with one Collection holding what fn writes.
	oneCollection := func(fn func(e *wbxml.Encoder)) []byte {
		return estimate(func(e *wbxml.Encoder) {
			e.Start(wbxml.ItemEstimateCollections)
			e.Start(wbxml.ItemEstimateCollection)
			fn(e)
			e.End()
			e.End()
		})
	}
	tooMany := estimate(func(e *wbxml.Encoder) {
		e.Start(wbxml.ItemEstimateCollections)
		for i := 0; i <= MaxSyncCollections; i++ {
			e.Start(wbxml.ItemEstimateCollection)
			e.Element(wbxml.ItemEstimateCollectionId, fmt.Sprint(i))
			e.End()
		}
		e.End()
	})
	long := strings.Repeat("A", MaxSyncIDLen)
	tests := []struct {
		name string
		file string
		body []byte
		want []EstimateCollection
		kind BodyErrorKind
	}{
		{name: "14.1", file: "getitemestimate_request_141.wbxml",
			want: []EstimateCollection{{SyncKey: "1234567890", CollectionID: "5"}, {SyncKey: "0", CollectionID: "8"}}},
		{name: "12.1", file: "getitemestimate_request_121.wbxml",
			want: []EstimateCollection{{SyncKey: "7", CollectionID: "5", Class: "Email"}}},
		{name: "no collections", body: estimate(func(e *wbxml.Encoder) { e.Empty(wbxml.ItemEstimateCollections) })},
		{name: "empty root", body: estimate(func(*wbxml.Encoder) {})},
		{name: "256-byte ids", body: oneCollection(func(e *wbxml.Encoder) {
			e.Element(wbxml.AirSyncSyncKey, long)
			e.Element(wbxml.ItemEstimateCollectionId, long)
			e.Element(wbxml.ItemEstimateClass, long)
		}), want: []EstimateCollection{{SyncKey: long, CollectionID: long, Class: long}}},
		{name: "257-byte CollectionId", body: oneCollection(func(e *wbxml.Encoder) {
			e.Element(wbxml.ItemEstimateCollectionId, long+"B")
		}), kind: BodyTooLong},
		{name: "513 collections", body: tooMany, kind: BodyTooLong},
		{name: "empty body", body: []byte{}, kind: BodyEmpty},
		{name: "wrong root", file: "vector_f_ping_request.wbxml", kind: BodyWrongRoot},
		{name: "SyncKey with an element inside", body: oneCollection(func(e *wbxml.Encoder) {
			e.Start(wbxml.AirSyncSyncKey)
			e.Element(wbxml.AirSyncStatus, "1")
			e.End()
		}), kind: BodyStructure},
		{name: "truncated", body: []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x06, 0x45, 0x47}, kind: BodySyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if tc.file != "" {
				body = bodyFile(t, tc.file)
			}
			got := GetItemEstimateInfo{Collections: []EstimateCollection{{"old", "old", "old"}, {"x", "y", "z"}, {}}}
			err := ReadGetItemEstimate(body, &got)
			if bodyErrKind(err) != tc.kind || (tc.kind == 0 && err != nil) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if err != nil {
				if strings.Contains(err.Error(), "AAAA") || !strings.HasPrefix(err.Error(), "eas: GetItemEstimate body: ") {
					t.Fatalf("error text %q", err)
				}
				return
			}
			if len(got.Collections) == 0 {
				got.Collections = nil
			}
			if !reflect.DeepEqual(got.Collections, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got.Collections, tc.want)
			}
		})
	}
	var info GetItemEstimateInfo
	err := ReadGetItemEstimate(tooMany, &info)
	be, ok := err.(*BodyError)
	if !ok || be.Element != wbxml.ItemEstimateCollection.String() || be.Msg != "more than 512 collections" {
		t.Fatalf("513 collections: %#v", err)
	}
}

func BenchmarkReadGetItemEstimate(b *testing.B) {
	var info GetItemEstimateInfo
	benchBody(b, "getitemestimate_request_141.wbxml", func(body []byte) {
		if err := ReadGetItemEstimate(body, &info); err != nil || len(info.Collections) != 2 {
			b.Fatal(err)
		}
	})
}

func FuzzReadGetItemEstimate(f *testing.F) {
	bodySeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var info GetItemEstimateInfo
		if err := ReadGetItemEstimate(body, &info); err == nil {
			for _, c := range info.Collections {
				if len(c.SyncKey) > MaxSyncIDLen || len(c.CollectionID) > MaxSyncIDLen || len(c.Class) > MaxSyncIDLen {
					t.Fatalf("over-long id kept: %d/%d/%d", len(c.SyncKey), len(c.CollectionID), len(c.Class))
				}
			}
		}
		bodyCheckAll(t, body)
	})
}
