package quarantine

import (
	"errors"
	"strings"
	"testing"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// settingsBody is a Settings request with one element per tag, each
// holding a Set with a Model "secret-value".
func settingsBody(tags ...wbxml.Tag) []byte {
	var w wbxml.Encoder
	w.Header()
	w.Start(wbxml.SettingsSettings)
	for _, tg := range tags {
		w.Start(tg)
		w.Start(wbxml.SettingsSet)
		w.Element(wbxml.SettingsModel, "secret-value")
		w.End()
		w.End()
	}
	w.End()
	return w.Bytes()
}

// TestGetChangesPersisted: the three GetChanges answers survive the
// Record's persisted form, which older records already use (-1, 0, 1).
func TestGetChangesPersisted(t *testing.T) {
	for _, tc := range []struct {
		g      eas.SyncGetChanges
		stored int8
	}{
		{eas.GetChangesAbsent, -1},
		{eas.GetChangesNo, 0},
		{eas.GetChangesYes, 1},
	} {
		if got := storeGetChanges(tc.g); got != tc.stored {
			t.Errorf("store(%v) = %d, want %d", tc.g, got, tc.stored)
		}
		if got := loadGetChanges(tc.stored); got != tc.g {
			t.Errorf("load(%d) = %v, want %v", tc.stored, got, tc.g)
		}
	}
	if loadGetChanges(5) != eas.GetChangesAbsent || storeGetChanges(eas.SyncGetChanges(9)) != -1 {
		t.Error("unknown values are not read as absent")
	}
}

// TestSettingsReadErrors: an unreadable Settings body fails
// eas.ReadSettings with a *eas.BodyError whose text carries no body
// values, and settings leaves it to Exchange (no answer).
func TestSettingsReadErrors(t *testing.T) {
	valid := settingsBody(wbxml.SettingsOof)
	for _, tc := range []struct {
		name string
		body []byte
		kind eas.BodyErrorKind
	}{
		{"wrong root", pingBody(60, "secret-value"), eas.BodyWrongRoot},
		{"truncated", valid[:len(valid)-3], eas.BodySyntax},
		{"trailing data", append(append([]byte(nil), valid...), 0x01), eas.BodySyntax},
		{"second root", append(append([]byte(nil), valid...), valid[4:]...), eas.BodySyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var info eas.SettingsInfo
			err := eas.ReadSettings(tc.body, &info)
			var be *eas.BodyError
			if !errors.As(err, &be) || be.Kind != tc.kind || be.Command != "Settings" {
				t.Fatalf("err = %#v, want kind %v", err, tc.kind)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows a body value: %v", err)
			}
			if a, ok := settings(tc.body); ok || a.Body != nil {
				t.Fatalf("settings answered an unreadable body: %+v", a)
			}
		})
	}
	if _, ok := settings(valid); !ok {
		t.Fatal("settings did not answer an Oof request")
	}
}
