package admin

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"time"

	"github.com/easgate/easgate/policy"
)

// DeviceColumns are the columns of a device list in CSV.
var DeviceColumns = []string{"user", "device_id", "device_type", "model", "os", "os_version", "client", "protocol_version",
	"state", "reasons", "rule", "override", "successor_of", "first_seen", "last_seen", "last_command", "last_address", "node"}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// DeviceRow is a device as one CSV row (DeviceColumns).
func DeviceRow(v *DeviceView) []string {
	ov := ""
	if v.Override != nil {
		ov = v.Override.Action
	}
	addr := ""
	if v.LastAddress.IsValid() {
		addr = v.LastAddress.String()
	}
	return []string{v.User, v.DeviceID, v.DeviceType, v.Info.Model, v.OS, v.OSVersion, v.Client, v.ProtocolVersion,
		v.State, strings.Join(v.Reasons, ";"), v.Rule, ov, v.SuccessorOf, ts(v.FirstSeen), ts(v.LastSeen), v.LastCommand, addr, v.Node}
}

// writeCSV renders a header row and one row per item.
func writeCSV[T any](header []string, items []T, row func(*T) []string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(header)
	for i := range items {
		_ = w.Write(row(&items[i]))
	}
	w.Flush()
	return b.Bytes()
}

// DevicesCSV renders devices with a header row.
func DevicesCSV(devs []DeviceView) []byte { return writeCSV(DeviceColumns, devs, DeviceRow) }

// AuditColumns are the columns of the audit trail in CSV.
var AuditColumns = []string{"seq", "time", "actor", "role", "action", "user", "device_id", "before", "after", "note", "like", "bulk"}

// AuditRow is an audit entry as one CSV row.
func AuditRow(e *policy.AuditEntry) []string {
	return []string{strconv.FormatUint(e.Seq, 10), ts(e.Time), e.Actor, e.Role, e.Action, e.User, e.DeviceID, e.Before, e.After,
		e.Note, e.Like, strconv.FormatBool(e.Bulk)}
}

// AuditCSV renders audit entries with a header row.
func AuditCSV(entries []policy.AuditEntry) []byte { return writeCSV(AuditColumns, entries, AuditRow) }
