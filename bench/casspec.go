package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
)

// CASSpecEnv names the environment variable through which Compare hands a
// fake CAS subprocess (CompareConfig.CASCommand) what to serve: a CASSpec
// as JSON. `easbench upstream` serves that spec when the variable is set.
// The environment is used rather than the command line because the spec
// carries the Users' passwords: /proc/PID/environ is readable by the
// process's owner only, /proc/PID/cmdline by everyone.
const CASSpecEnv = "EASBENCH_CAS_SPEC"

// maxCASSpec bounds an encoded spec (an environment string is at most
// 128 KiB on Linux anyway).
const maxCASSpec = 1 << 20

// CASSpec is what a fake CAS subprocess serves: the address to listen on
// and the complete FakeCASConfig. Its JSON form uses FakeCASConfig's Go
// field names, durations in nanoseconds:
//
//	{"listen":"127.0.0.1:40123","cas":{"Latency":0,"FailRate":0,"Messages":50,"TimeScale":60,"Users":{"jdoe":"..."},...}}
type CASSpec struct {
	Listen string        `json:"listen"`
	CAS    FakeCASConfig `json:"cas"`
}

// CASSpecError is a bad CASSpec: the JSON field (or "" when not known), the
// byte offset in the input (-1 when not known) and what is wrong. It never
// quotes the input, which may hold passwords.
type CASSpecError struct {
	Field  string
	Offset int64
	Msg    string
}

func (e *CASSpecError) Error() string {
	var b strings.Builder
	b.WriteString("fake CAS spec ($" + CASSpecEnv + ")")
	if e.Field != "" {
		b.WriteString(": field " + e.Field)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte offset %d", e.Offset)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Encode returns the spec's JSON, the value of CASSpecEnv.
func (s CASSpec) Encode() (string, error) {
	if err := s.validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", &CASSpecError{Offset: -1, Msg: err.Error()}
	}
	if len(b) > maxCASSpec {
		return "", &CASSpecError{Offset: -1, Msg: fmt.Sprintf("%d bytes, more than the %d allowed", len(b), maxCASSpec)}
	}
	return string(b), nil
}

// ParseCASSpec decodes and checks a spec written by Encode. Unknown fields
// are rejected, so that a parent and a child built from different versions
// fail loudly instead of serving another configuration.
func ParseCASSpec(b []byte) (*CASSpec, error) {
	if len(b) > maxCASSpec {
		return nil, &CASSpecError{Offset: -1, Msg: fmt.Sprintf("%d bytes, more than the %d allowed", len(b), maxCASSpec)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s CASSpec
	if err := dec.Decode(&s); err != nil {
		return nil, jsonSpecError(err, dec.InputOffset())
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		rest := bytes.TrimLeft(b[end:], " \t\r\n")
		return nil, &CASSpecError{Offset: int64(len(b) - len(rest)), Msg: "trailing data after the JSON object"}
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// jsonSpecError turns an encoding/json error into a CASSpecError without
// the input's bytes (a SyntaxError's text quotes the offending character).
func jsonSpecError(err error, off int64) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &CASSpecError{Offset: se.Offset, Msg: "malformed JSON"}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return &CASSpecError{Field: field, Offset: te.Offset, Msg: "cannot hold a JSON " + te.Value}
	case errors.Is(err, io.EOF):
		return &CASSpecError{Offset: 0, Msg: "empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &CASSpecError{Offset: off, Msg: "truncated JSON"}
	}
	// DisallowUnknownFields: `json: unknown field "X"` names a key, not a value.
	return &CASSpecError{Offset: off, Msg: strings.TrimPrefix(err.Error(), "json: ")}
}

// validate checks what a fake CAS cannot serve.
func (s *CASSpec) validate() error {
	if _, port, err := net.SplitHostPort(s.Listen); err != nil || port == "" {
		return &CASSpecError{Field: "listen", Offset: -1, Msg: "want host:port"}
	}
	c := &s.CAS
	for _, r := range []struct {
		name string
		v    float64
	}{{"cas.FailRate", c.FailRate}, {"cas.ResetRate", c.ResetRate}, {"cas.SlowRate", c.SlowRate}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return &CASSpecError{Field: r.name, Offset: -1, Msg: fmt.Sprintf("%g is not a fraction in [0, 1]", r.v)}
		}
	}
	if math.IsNaN(c.TimeScale) || math.IsInf(c.TimeScale, 0) || c.TimeScale < 0 {
		return &CASSpecError{Field: "cas.TimeScale", Offset: -1, Msg: fmt.Sprintf("%g is not a factor >= 0 (0 or 1: real time)", c.TimeScale)}
	}
	return nil
}

// CASSpecFromEnv returns the spec in $EASBENCH_CAS_SPEC, or nil and no
// error when the variable is not set.
func CASSpecFromEnv() (*CASSpec, error) {
	v, ok := os.LookupEnv(CASSpecEnv)
	if !ok {
		return nil, nil
	}
	return ParseCASSpec([]byte(v))
}
