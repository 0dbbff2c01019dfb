package wbxml

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkTokenizeSyncResponse tokenizes a ~4 KB Sync response with ten
// e-mails (the proxy's typical body-inspection load).
func BenchmarkTokenizeSyncResponse(b *testing.B) {
	data := readTestdata(b, "sync_response_large.wbxml")
	var d Decoder
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset(data)
		for {
			if _, err := d.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// BenchmarkSkipSyncResponse skips the whole Commands subtree, as a reader that
// only wants the SyncKey would.
func BenchmarkSkipSyncResponse(b *testing.B) {
	data := readTestdata(b, "sync_response_large.wbxml")
	var d Decoder
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset(data)
		for {
			tok, err := d.Next()
			if err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			if tok.Kind == StartTag && tok.Tag == AirSyncCommands {
				if err := d.Skip(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// BenchmarkEncodeBlockResponse builds the ≥14.0 FolderSync "blocked" body
// into a reused buffer.
func BenchmarkEncodeBlockResponse(b *testing.B) {
	buf := make([]byte, 0, 64)
	var e Encoder
	want := readTestdata(b, "vector_h_block_foldersync.wbxml")
	b.ReportAllocs()
	for b.Loop() {
		e.Reset(buf[:0])
		e.Header()
		e.Start(FolderHierarchyFolderSync)
		e.Element(FolderHierarchyStatus, "129")
		e.End()
	}
	if !bytes.Equal(e.Bytes(), want) {
		b.Fatal("wrong output")
	}
}

func BenchmarkToXML(b *testing.B) {
	data := readTestdata(b, "sync_response_large.wbxml")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ToXML(io.Discard, data, XMLOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEncodeAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	var e Encoder
	n := testing.AllocsPerRun(100, func() {
		e.Reset(buf[:0])
		e.Header()
		e.Start(PingPing)
		e.Element(PingStatus, "129")
		e.End()
	})
	if n != 0 {
		t.Errorf("encoding into a large enough buffer allocates %v times", n)
	}
}
