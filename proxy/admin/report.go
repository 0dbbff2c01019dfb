package admin

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
)

// The impact report answers "what happens if I switch to enforce, or to
// this policy?": every device seen in a window is evaluated with the
// gateway's own engine (the running one, or one built from a candidate
// config), and the answer counts the outcomes and lists the devices whose
// state would change from what the gateway applies today.

// Report is the impact report.
type Report struct {
	Generated time.Time `json:"generated"`
	Since     time.Time `json:"since"`
	Mode      string    `json:"mode"` // the evaluated policy's mode
	Devices   int       `json:"devices"`
	Users     int       `json:"users"`
	// ByState counts what the gateway would apply (report mode: allowed);
	// ByAction what the policy decides, as if enforced.
	ByState  map[string]int `json:"by_state"`
	ByAction map[string]int `json:"by_action"`
	ByReason map[string]int `json:"by_reason"`
	ByClient map[string]int `json:"by_client"`
	ByOS     map[string]int `json:"by_os"`
	// Changes are the devices whose state would differ from the one the
	// gateway last applied; UsersChanged their users.
	Changes      []ReportRow `json:"changes"`
	UsersChanged []string    `json:"users_changed"`
	// Rows has every device evaluated (the CSV form); not in JSON.
	Rows []ReportRow `json:"-"`
}

// ReportRow is one evaluated device.
type ReportRow struct {
	User     string   `json:"user"`
	DeviceID string   `json:"device_id"`
	Client   string   `json:"client,omitempty"`
	OS       string   `json:"os,omitempty"`
	Current  string   `json:"current"` // the state the gateway last applied ("" never decided)
	State    string   `json:"state"`   // the evaluated state
	Action   string   `json:"action"`
	Reasons  []string `json:"reasons"`
	Rule     string   `json:"rule,omitempty"`
}

// BuildReport evaluates every device of d last seen at or after since with
// eng, at now.
func BuildReport(ctx context.Context, eng *policy.Engine, rules *eas.Rules, d *policy.Devices, since, now time.Time) Report {
	rep := Report{Generated: now.UTC(), Since: since.UTC(), Mode: eng.Mode().String(),
		ByState: map[string]int{}, ByAction: map[string]int{}, ByReason: map[string]int{}, ByClient: map[string]int{}, ByOS: map[string]int{},
		Changes: []ReportRow{}, UsersChanged: []string{}}
	users, changed := map[string]bool{}, map[string]bool{}
	d.Each(func(r *policy.DeviceRecord) {
		if r.LastSeen.Before(since) {
			return
		}
		s := Subject(r, now, rules)
		dec := eng.Decide(ctx, s)
		os := s.Client.OS.String()
		if s.Client.OSVersion.Known {
			os += " " + s.Client.OSVersion.String()
		}
		row := ReportRow{User: r.User, DeviceID: r.DeviceID, Client: s.Client.Family.Slug(), OS: os, Current: r.State,
			State: policy.AccessState(&dec), Action: dec.Action.String(), Rule: dec.Rule, Reasons: []string{}}
		for _, x := range dec.Reasons() {
			row.Reasons = append(row.Reasons, x.String())
			rep.ByReason[x.String()]++
		}
		rep.Devices++
		users[r.User] = true
		rep.ByState[row.State]++
		rep.ByAction[row.Action]++
		rep.ByClient[row.Client]++
		rep.ByOS[os]++
		rep.Rows = append(rep.Rows, row)
		if row.Current != "" && row.Current != row.State {
			rep.Changes = append(rep.Changes, row)
			changed[r.User] = true
		}
	})
	rep.Users = len(users)
	byKey := func(a, b ReportRow) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.DeviceID, b.DeviceID)
	}
	slices.SortFunc(rep.Rows, byKey)
	slices.SortFunc(rep.Changes, byKey)
	for u := range changed {
		rep.UsersChanged = append(rep.UsersChanged, u)
	}
	slices.Sort(rep.UsersChanged)
	return rep
}

// ReportColumns are the CSV columns: one row per evaluated device.
var ReportColumns = []string{"user", "device_id", "client", "os", "current", "state", "action", "reasons", "rule", "changed"}

// CSV renders every evaluated device.
func (r *Report) CSV() []byte {
	return writeCSV(ReportColumns, r.Rows, func(x *ReportRow) []string {
		return []string{x.User, x.DeviceID, x.Client, x.OS, x.Current, x.State, x.Action, strings.Join(x.Reasons, ";"), x.Rule,
			strconv.FormatBool(x.Current != "" && x.Current != x.State)}
	})
}
