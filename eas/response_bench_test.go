package eas

import "testing"

func BenchmarkAppendStatusBody(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out, _ := AppendStatusBody(buf[:0], CmdFolderSync, StatusDeviceIsBlockedForThisUser)
		b.SetBytes(int64(len(out)))
	}
}

func BenchmarkAppendErrorAnswer(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, out := AppendErrorAnswer(buf[:0], V141, CmdSync, StatusDeviceIsBlockedForThisUser, 403)
		b.SetBytes(int64(len(out)))
	}
}

func BenchmarkAppendSyncResponse(b *testing.B) {
	cols := []SyncCollectionResponse{{SyncKey: "2", CollectionID: "5", Adds: []EmailItem{respNotice()}}}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out := AppendSyncResponse(buf[:0], V141, cols, BodyTypeHTML)
		b.SetBytes(int64(len(out)))
	}
}
