package sogo_test

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// What SOGo's side saw, independently of what the phone was told: the
// messages and flags Dovecot holds, and the requests nginx passed to sogod.

// mailState is every message of a user as Dovecot lists it: one line per
// message, "mailbox=INBOX uid=7 flags=\Seen", sorted. \Recent is left out
// (it belongs to an IMAP session, not to the message). A message marked
// read, flagged, moved, deleted or expunged changes the state.
type mailState []string

func (e *sogoEnv) mailState(ctx context.Context, user string) (mailState, error) {
	out, err := e.doveadm(ctx, nil, "-f", "flow", "fetch", "-u", user, "mailbox uid flags", "all")
	if err != nil {
		return nil, err
	}
	var s mailState
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, flags, ok := strings.Cut(line, " flags=")
		if !ok {
			return nil, fmt.Errorf("doveadm fetch for %s: no flags= in %q", user, line)
		}
		var keep []string
		for f := range strings.FieldsSeq(flags) {
			if f != `\Recent` {
				keep = append(keep, f)
			}
		}
		slices.Sort(keep)
		s = append(s, k+" flags="+strings.Join(keep, " "))
	}
	slices.Sort(s)
	return s, nil
}

// diff describes how s differs from before ("" when equal).
func (s mailState) diff(before mailState) string {
	var gone, added []string
	for _, l := range before {
		if _, found := slices.BinarySearch(s, l); !found {
			gone = append(gone, l)
		}
	}
	for _, l := range s {
		if _, found := slices.BinarySearch(before, l); !found {
			added = append(added, l)
		}
	}
	if len(gone)+len(added) == 0 {
		return ""
	}
	return fmt.Sprintf("%d messages before, %d now; gone or changed: %q; new or changed: %q", len(before), len(s), gone, added)
}

// upstreamCommands lists the Cmd= of every request with DeviceId=device
// that nginx passed to sogod, in order (plain query form only: a base64
// query names no device in clear text).
func (e *sogoEnv) upstreamCommands(device string) ([]string, error) {
	f, err := os.Open(e.AccessLog)
	if err != nil {
		return nil, fmt.Errorf("nginx access log: %w", err)
	}
	defer f.Close()
	var cmds []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 127.0.0.1 - alice [date] "POST /Microsoft-Server-ActiveSync?Cmd=Sync&... HTTP/1.1" 200 ...
		_, rest, ok := strings.Cut(sc.Text(), `"`)
		if !ok {
			continue
		}
		req, _, _ := strings.Cut(rest, `"`)
		f := strings.Fields(req)
		if len(f) < 2 {
			continue
		}
		_, q, ok := strings.Cut(f[1], "?")
		if !ok {
			continue
		}
		v, err := url.ParseQuery(q)
		if err != nil || v.Get("DeviceId") != device {
			continue
		}
		cmds = append(cmds, v.Get("Cmd"))
	}
	return cmds, sc.Err()
}

// logSettle is how long nginx may take to write a request's log line: it
// writes it when the request is finalized, just after the phone has the
// response.
const logSettle = 2 * time.Second

// upstreamCommandsAfter waits until nginx logged at least n requests of
// device, for at most logSettle, and returns them. With n = 0 it waits
// logSettle, so that a request that did reach SOGo has been logged.
func (e *sogoEnv) upstreamCommandsAfter(ctx context.Context, device string, n int) ([]string, error) {
	deadline := time.Now().Add(logSettle)
	for {
		cmds, err := e.upstreamCommands(device)
		if err != nil || (n > 0 && len(cmds) >= n) || !time.Now().Before(deadline) {
			return cmds, err
		}
		select {
		case <-ctx.Done():
			return cmds, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
