package eas

import "testing"

func benchBody(b *testing.B, file string, fn func(body []byte)) {
	body := bodyFile(b, file)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fn(body)
	}
}

func BenchmarkReadPingInterval(b *testing.B) {
	benchBody(b, "vector_f_ping_request.wbxml", func(body []byte) {
		if _, ok, err := ReadPingInterval(body); !ok || err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkReadSyncHold(b *testing.B) {
	benchBody(b, "sync_request_wait.wbxml", func(body []byte) {
		if _, ok, err := ReadSyncHold(body); !ok || err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkReadDeviceInfo(b *testing.B) {
	var di DeviceInfo
	benchBody(b, "vector_c_provision_141_initial.wbxml", func(body []byte) {
		if found, err := ReadDeviceInfo(body, &di); !found || err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkReadProvision(b *testing.B) {
	var p ProvisionInfo
	benchBody(b, "provision_response_initial.wbxml", func(body []byte) {
		if err := ReadProvision(body, &p, nil); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkReadPing(b *testing.B) {
	var p PingInfo
	benchBody(b, "ping_request_multi.wbxml", func(body []byte) {
		if err := ReadPing(body, &p); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkReadSync(b *testing.B) {
	var s SyncInfo
	benchBody(b, "sync_request_wait.wbxml", func(body []byte) {
		if err := ReadSync(body, &s); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkReadFolderSync(b *testing.B) {
	var fs FolderSyncInfo
	benchBody(b, "foldersync_response_initial.wbxml", func(body []byte) {
		if err := ReadFolderSync(body, &fs); err != nil {
			b.Fatal(err)
		}
	})
}
