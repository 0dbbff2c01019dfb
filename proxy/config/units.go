package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in Go syntax ("90s", "15m", "1h30m").
// A bare number without a unit is rejected, except "0".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d in Go syntax ("15m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d in Go syntax, so JSON output reads "15m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses Go duration syntax; see ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

var (
	errDurationSyntax = errors.New("invalid duration")
	errDurationUnit   = errors.New("duration needs a unit")
	errDurationDays   = errors.New("days are not a duration unit")
)

// ParseDuration parses Go duration syntax. Unlike time.ParseDuration it
// rejects a number without a unit other than 0 (errDurationUnit), and
// reports a "d" suffix separately (errDurationDays).
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errDurationSyntax
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		if s == "0" {
			return 0, nil
		}
		return 0, errDurationUnit
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		if strings.HasSuffix(s, "d") {
			if _, ferr := strconv.ParseFloat(s[:len(s)-1], 64); ferr == nil {
				return 0, errDurationDays
			}
		}
		return 0, errDurationSyntax
	}
	return Duration(v), nil
}

// Size is a byte count. Written as a plain integer (bytes) or a number with
// a unit: B; KiB, MiB, GiB, TiB (powers of 1024); KB, MB, GB, TB (powers of
// 1000, as in SI). One space between number and unit is allowed. Single-letter
// units ("64M") are rejected as ambiguous.
type Size int64

// Binary and decimal size units.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
	KB  Size = 1000
	MB  Size = 1000 * KB
	GB  Size = 1000 * MB
	TB  Size = 1000 * GB
)

var sizeUnits = []struct {
	name string
	mult Size
}{
	{"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB}, {"TiB", TiB},
	{"KB", KB}, {"MB", MB}, {"GB", GB}, {"TB", TB},
	{"B", 1},
}

// String formats s with the largest binary unit that divides it exactly
// ("64MiB", "1500", "16KiB").
func (s Size) String() string {
	for _, u := range []struct {
		name string
		mult Size
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if s != 0 && s%u.mult == 0 {
			return strconv.FormatInt(int64(s/u.mult), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText writes s as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a size; see ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

var (
	errSizeSyntax    = errors.New("invalid size")
	errSizeAmbiguous = errors.New("ambiguous size unit")
	errSizeRange     = errors.New("size out of range")
)

// ParseSize parses "512", "64MiB", "16 KiB", "1.5GiB", "10MB". Fractions
// must come to a whole number of bytes.
func ParseSize(str string) (Size, error) {
	s := strings.TrimSpace(str)
	if s == "" {
		return 0, errSizeSyntax
	}
	num, unit := s, ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' {
			num, unit = s[:i], strings.TrimPrefix(s[i:], " ")
			break
		}
	}
	if num == "" || strings.HasSuffix(num, ".") || strings.HasPrefix(num, ".") {
		return 0, errSizeSyntax
	}
	mult := Size(1)
	if unit != "" {
		found := false
		for _, u := range sizeUnits {
			if unit == u.name {
				mult, found = u.mult, true
				break
			}
		}
		if !found {
			switch strings.ToUpper(unit) {
			case "K", "M", "G", "T":
				return 0, errSizeAmbiguous
			}
			return 0, errSizeSyntax
		}
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, errSizeRange
		}
		if n > math.MaxInt64/int64(mult) {
			return 0, errSizeRange
		}
		return Size(n) * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errSizeSyntax
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, errSizeRange
	}
	if v != math.Trunc(v) {
		return 0, errSizeSyntax
	}
	return Size(v), nil
}

// Percent is a share written as a percentage with its sign: "50%", "12.5%".
// The value is in percentage points (50 for "50%"). A bare number is
// rejected, so that 0.5 is not read as half a percent or as half.
type Percent float64

// Fraction returns p as a share of one (0.5 for 50%).
func (p Percent) Fraction() float64 { return float64(p) / 100 }

// String formats p with its sign ("50%").
func (p Percent) String() string { return strconv.FormatFloat(float64(p), 'f', -1, 64) + "%" }

// MarshalText writes p as String does.
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a percentage; see ParsePercent.
func (p *Percent) UnmarshalText(b []byte) error {
	v, err := ParsePercent(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

var (
	errPercentSyntax = errors.New("invalid percentage")
	errPercentSign   = errors.New("percentage needs a % sign")
)

// ParsePercent parses "50%", "12.5%", "100 %". A number without the sign
// is errPercentSign; the range is for the caller to check.
func ParsePercent(str string) (Percent, error) {
	s := strings.TrimSpace(str)
	num, ok := strings.CutSuffix(s, "%")
	num = strings.TrimSpace(num)
	if num == "" || strings.ContainsAny(num, "eEinfINFxX_") {
		return 0, errPercentSyntax
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) {
		return 0, errPercentSyntax
	}
	if !ok {
		return 0, errPercentSign
	}
	return Percent(v), nil
}
