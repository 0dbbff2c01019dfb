package proxy

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The access log's hand-written JSON must encode strings and numbers as
// zerolog encodes them for the other logs: same text, valid JSON.
func TestAppendQuotedMatchesZerolog(t *testing.T) {
	cases := []string{
		"", "jdoe", `CORP\jdoe`, `say "hi"`, "tab\there", "nl\nand\rcr", "\x00\x01\x1f\x7f",
		"Ünïcødé ✓ 😀", "bad \xff\xfe utf8", "trunc \xe2\x82", "</script>&amp;", strings.Repeat("A", 300),
		"ok then \"q\" and \\ back", "é\x01ü\xffz\"", "\xff", "a\xe2\x82", "😀\n😀", "x\x7fy",
	}
	for _, s := range cases {
		var zb bytes.Buffer
		zl := zerolog.New(&zb)
		zl.Log().Str("k", s).Send()
		want := strings.TrimSuffix(zb.String(), "\n")
		got := "{" + string(appendStr(nil, "k", s)[1:]) + "}"
		if got != want {
			t.Errorf("%q: got %s, zerolog %s", s, got, want)
		}
		if gotB := "{" + string(appendStr(nil, "k", []byte(s))[1:]) + "}"; gotB != want {
			t.Errorf("%q as bytes: got %s, zerolog %s", s, gotB, want)
		}
		var v map[string]string
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Errorf("%q: invalid JSON %s: %v", s, got, err)
		}
	}
}

func TestAppendDecimalMatchesFloat(t *testing.T) {
	for _, v := range []int64{0, 1, 9, 10, 999, 1000, 1001, 1500, 123456, 1_000_000, 59_999_999, 3_540_000_000_123, -1500} {
		for _, scale := range []int{3, 9} {
			pow := 1.0
			for range scale {
				pow *= 10
			}
			want := `,"k":` + strconv.FormatFloat(float64(v)/pow, 'f', -1, 64)
			if got := string(appendDecimal(nil, "k", v, scale)); got != want {
				t.Errorf("appendDecimal(%d, %d) = %s, want %s", v, scale, got, want)
			}
		}
	}
}

func TestAppendAddr(t *testing.T) {
	cases := []struct {
		a    net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 443}, `"127.0.0.1:443"`},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 8443}, `"[::1]:8443"`},
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3).To16(), Port: 1}, `"10.1.2.3:1"`},
		{&net.UnixAddr{Name: "/run/x\"y", Net: "unix"}, `"/run/x\"y"`},
	}
	for _, c := range cases {
		if got := string(appendAddr(nil, c.a)); got != c.want {
			t.Errorf("appendAddr(%v) = %s, want %s", c.a, got, c.want)
		}
	}
}

func TestLogClockRFC3339(t *testing.T) {
	var c clock
	now := time.Now()
	want := `"` + now.Format(time.RFC3339) + `"`
	for range 2 { // formatted, then cached
		if got := string(c.appendNow(nil, now)); got != want {
			t.Fatalf("appendNow = %s, want %s", got, want)
		}
	}
	later := now.Add(2 * time.Second)
	if got := string(c.appendNow(nil, later)); got != `"`+later.Format(time.RFC3339)+`"` {
		t.Fatalf("appendNow after 2 s = %s", got)
	}
}

// Random strings of the bytes that matter (escaped, multi-byte, invalid
// UTF-8) among plain ones, at every offset of the eight-byte scan.
func TestAppendQuotedRandomMatchesZerolog(t *testing.T) {
	alphabet := []string{"a", "Z", " ", "~", `"`, `\`, "\x00", "\x1f", "\x7f", "\x80", "\xff", "é", "✓", "😀", "\xe2\x82", "\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	var zb bytes.Buffer
	for range 5000 {
		var sb strings.Builder
		for range rng.IntN(40) {
			if rng.IntN(4) == 0 {
				sb.WriteString(alphabet[rng.IntN(len(alphabet))])
			} else {
				sb.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		s := sb.String()
		zb.Reset()
		zl := zerolog.New(&zb)
		zl.Log().Str("k", s).Send()
		want := strings.TrimSuffix(zb.String(), "\n")
		if got := "{" + string(appendStr(nil, "k", s)[1:]) + "}"; got != want {
			t.Fatalf("%q: got %s, zerolog %s", s, got, want)
		}
		if got := "{" + string(appendStr(nil, "k", []byte(s))[1:]) + "}"; got != want {
			t.Fatalf("%q as bytes: got %s, zerolog %s", s, got, want)
		}
	}
}
