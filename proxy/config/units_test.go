package config

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  error
	}{
		{"90s", 90 * time.Second, nil},
		{"15m", 15 * time.Minute, nil},
		{"1h30m", 90 * time.Minute, nil},
		{"200ms", 200 * time.Millisecond, nil},
		{" 24h ", 24 * time.Hour, nil},
		{"0", 0, nil},
		{"-5s", -5 * time.Second, nil},
		{"30", 0, errDurationUnit},
		{"1.5", 0, errDurationUnit},
		{"1d", 0, errDurationDays},
		{"12 parsecs", 0, errDurationSyntax},
		{"", 0, errDurationSyntax},
		{"s", 0, errDurationSyntax},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if err != tc.err || got.D() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  error
		str  string
	}{
		{"512", 512, nil, "512"},
		{"16KiB", 16 << 10, nil, "16KiB"},
		{"64MiB", 64 << 20, nil, "64MiB"},
		{"64 MiB", 64 << 20, nil, "64MiB"},
		{"1GiB", 1 << 30, nil, "1GiB"},
		{"2TiB", 2 << 40, nil, "2TiB"},
		{"1.5KiB", 1536, nil, "1536"},
		{"10MB", 10_000_000, nil, "10000000"},
		{"1KB", 1000, nil, "1000"},
		{"100B", 100, nil, "100"},
		{"0", 0, nil, "0"},
		{"64M", 0, errSizeAmbiguous, ""},
		{"1k", 0, errSizeAmbiguous, ""},
		{"1.1B", 0, errSizeSyntax, ""},
		{"lots", 0, errSizeSyntax, ""},
		{"-1KiB", 0, errSizeSyntax, ""},
		{"1.KiB", 0, errSizeSyntax, ""},
		{"64mib", 0, errSizeSyntax, ""},
		{"", 0, errSizeSyntax, ""},
		{"9223372036854775807", 1<<63 - 1, nil, "9223372036854775807"},
		{"9223372036854775808", 0, errSizeRange, ""},
		{"9000000TiB", 0, errSizeRange, ""},
		{"1e3", 0, errSizeSyntax, ""},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if err != tc.err || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
			continue
		}
		if err == nil {
			if s := got.String(); s != tc.str {
				t.Errorf("Size(%d).String() = %q, want %q", got, s, tc.str)
			}
			if back, err := ParseSize(got.String()); err != nil || back != got {
				t.Errorf("round trip of %q: %d, %v", tc.in, back, err)
			}
		}
	}
}

func TestTextMarshalling(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.D() != 90*time.Second {
		t.Errorf("Duration.UnmarshalText: %v %v", d, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" {
		t.Errorf("Duration.MarshalText = %s", b)
	}
	if err := d.UnmarshalText([]byte("soon")); err == nil {
		t.Error("Duration.UnmarshalText accepted soon")
	}
	var s Size
	if err := s.UnmarshalText([]byte("2MiB")); err != nil || s != 2*MiB {
		t.Errorf("Size.UnmarshalText: %v %v", s, err)
	}
	if b, _ := s.MarshalText(); string(b) != "2MiB" {
		t.Errorf("Size.MarshalText = %s", b)
	}
	if err := s.UnmarshalText([]byte("big")); err == nil {
		t.Error("Size.UnmarshalText accepted big")
	}
}

func TestEditDistanceAndSuggest(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{{"adress", "address", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"same", "same", 0}}
	for _, tc := range tests {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
	if s := suggest("optinal", []string{"off", "optional", "required"}); s != "optional" {
		t.Errorf("suggest = %q", s)
	}
	if s := suggest("xyz", []string{"off", "optional", "required"}); s != "" {
		t.Errorf("suggest = %q, want none", s)
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in   string
		want Percent
		err  error
	}{
		{"50%", 50, nil},
		{"12.5%", 12.5, nil},
		{" 100 % ", 100, nil},
		{"0%", 0, nil}, // parses; validation rejects it
		{"150%", 150, nil},
		{"0.5", 0, errPercentSign},
		{"50", 0, errPercentSign},
		{"%", 0, errPercentSyntax},
		{"", 0, errPercentSyntax},
		{"half%", 0, errPercentSyntax},
		{"1e2%", 0, errPercentSyntax},
		{"NaN%", 0, errPercentSyntax},
		{"50%%", 0, errPercentSyntax},
	}
	for _, tc := range tests {
		got, err := ParsePercent(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if s := Percent(12.5).String(); s != "12.5%" {
		t.Errorf("String = %q", s)
	}
	if f := Percent(50).Fraction(); f != 0.5 {
		t.Errorf("Fraction = %v", f)
	}
}
