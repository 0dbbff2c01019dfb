package config

import (
	"os"
	"testing"
)

// BenchmarkParseExample measures a full load of the shipped example
// (decode + validate); it runs on every reload, never per request.
func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("easgate.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseBroken measures the error path (many problems in one file).
func BenchmarkParseBroken(b *testing.B) {
	data, err := os.ReadFile("testdata/broken/many-errors.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("many-errors.yaml", data); err == nil {
			b.Fatal("no error")
		}
	}
}
