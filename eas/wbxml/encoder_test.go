package wbxml

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestEncodeVectorA(t *testing.T) {
	e := NewEncoder(nil)
	e.Header()
	e.Start(AirSyncSync)
	e.Start(AirSyncCollections)
	e.Start(AirSyncCollection)
	e.Element(AirSyncClass, "Contacts")
	e.Element(AirSyncSyncKey, "2")
	e.Element(AirSyncCollectionId, "2")
	e.Element(AirSyncStatus, "1")
	e.Start(AirSyncCommands)
	e.Start(AirSyncAdd)
	e.Element(AirSyncServerId, "2:1")
	e.Start(AirSyncApplicationData)
	e.Start(AirSyncBaseBody)
	e.Element(AirSyncBaseType, "1")
	e.Element(AirSyncBaseEstimatedDataSize, "0")
	e.Element(AirSyncBaseTruncated, "1")
	e.End()
	e.Element(ContactsFileAs, "Funk, Don")
	e.Element(ContactsFirstName, "Don")
	e.Element(ContactsLastName, "Funk")
	e.Element(AirSyncBaseNativeBodyType, "1")
	for range 6 { // ApplicationData Add Commands Collection Collections Sync
		e.End()
	}
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	want := readTestdata(t, "vector_a_sync_add_contact.wbxml")
	if !bytes.Equal(e.Bytes(), want) {
		t.Errorf("got  % X\nwant % X", e.Bytes(), want)
	}
	if e.Depth() != 0 {
		t.Errorf("Depth = %d", e.Depth())
	}
}

func TestEncodeVectors(t *testing.T) {
	tests := []struct {
		file  string
		build func(e *Encoder)
	}{
		{"vector_b_settings_deviceinfo.wbxml", func(e *Encoder) {
			e.Start(SettingsSettings)
			e.Start(SettingsDeviceInformation)
			e.Start(SettingsSet)
			e.Element(SettingsModel, "Manufacturer-Name-Number")
			e.Element(SettingsIMEI, "123456789012345")
			e.Element(SettingsFriendlyName, "My PPC Phone")
			e.Element(SettingsOS, "PPC")
			e.Element(SettingsOSLanguage, "us-EN")
			e.Element(SettingsPhoneNumber, "206-555-0112")
			e.Element(SettingsEnableOutboundSMS, "1")
			e.Element(SettingsMobileOperator, "T-Mojo")
			e.End()
			e.End()
			e.End()
		}},
		{"vector_e_foldersync_initial.wbxml", func(e *Encoder) {
			e.Start(FolderHierarchyFolderSync)
			e.Element(FolderHierarchySyncKey, "0")
			e.End()
		}},
		{"vector_f_ping_request.wbxml", func(e *Encoder) {
			e.Start(PingPing)
			e.Element(PingHeartbeatInterval, "480")
			e.Start(PingFolders)
			e.Start(PingFolder)
			e.Element(PingId, "5")
			e.Element(PingClass, "Email")
			e.End()
			e.End()
			e.End()
		}},
		{"vector_h_block_foldersync.wbxml", func(e *Encoder) {
			e.Start(FolderHierarchyFolderSync)
			e.Element(FolderHierarchyStatus, "129")
			e.End()
		}},
		{"vector_h_block_sync.wbxml", func(e *Encoder) {
			e.Start(AirSyncSync)
			e.Element(AirSyncStatus, "129")
			e.End()
		}},
		{"vector_h_block_ping.wbxml", func(e *Encoder) {
			e.Start(PingPing)
			e.Element(PingStatus, "129")
			e.End()
		}},
		{"vector_h_block_provision.wbxml", func(e *Encoder) {
			e.Start(ProvisionProvision)
			e.Element(ProvisionStatus, "129")
			e.End()
		}},
		{"vector_h_block_settings.wbxml", func(e *Encoder) {
			e.Start(SettingsSettings)
			e.Element(SettingsStatus, "129")
			e.End()
		}},
		{"vector_h_foldersync_142.wbxml", func(e *Encoder) {
			e.Start(FolderHierarchyFolderSync)
			e.Element(FolderHierarchyStatus, "142")
			e.End()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			e := NewEncoder(make([]byte, 0, 64))
			e.Header()
			tc.build(e)
			if err := e.Err(); err != nil {
				t.Fatal(err)
			}
			want := readTestdata(t, tc.file)
			if !bytes.Equal(e.Bytes(), want) {
				t.Errorf("got  % X\nwant % X", e.Bytes(), want)
			}
		})
	}
}

func TestEncoderAppendsAndResets(t *testing.T) {
	prefix := []byte("HTTP body: ")
	e := NewEncoder(prefix)
	e.Header()
	e.Empty(PingPing)
	if got := e.Bytes(); !bytes.Equal(got, append([]byte("HTTP body: "), 0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x05)) {
		t.Errorf("got % X", got)
	}
	// Reset forgets the page: the next Ping tag switches page again.
	e.Reset(nil)
	e.Header()
	e.Start(PingPing)
	e.Text([]byte("x"))
	e.Opaque([]byte{0, 1})
	e.End()
	want := []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x03, 'x', 0x00, 0xC3, 0x02, 0x00, 0x01, 0x01}
	if !bytes.Equal(e.Bytes(), want) {
		t.Errorf("got  % X\nwant % X", e.Bytes(), want)
	}
}

func TestEncoderErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(e *Encoder)
		code  ErrorCode
	}{
		{"End with nothing open", func(e *Encoder) { e.End() }, ErrUnexpectedEnd},
		{"End twice", func(e *Encoder) { e.Start(PingPing); e.End(); e.End() }, ErrUnexpectedEnd},
		{"NUL in string", func(e *Encoder) { e.Start(PingPing); e.String("a\x00b") }, ErrNULInString},
		{"NUL in text", func(e *Encoder) { e.Start(PingPing); e.Text([]byte{'a', 0}) }, ErrNULInString},
		{"invalid UTF-8 string", func(e *Encoder) { e.Start(PingPing); e.String("\xff") }, ErrInvalidUTF8},
		{"invalid UTF-8 text", func(e *Encoder) { e.Start(PingPing); e.Text([]byte{0xC3}) }, ErrInvalidUTF8},
		{"page 30", func(e *Encoder) { e.Start(MakeTag(30, 5)) }, ErrBadTag},
		{"token 0x04", func(e *Encoder) { e.Empty(MakeTag(0, 4)) }, ErrBadTag},
		{"string outside root", func(e *Encoder) { e.String("x") }, ErrContentOutsideRoot},
		{"opaque outside root", func(e *Encoder) { e.Opaque([]byte("x")) }, ErrContentOutsideRoot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEncoder(nil)
			e.Header()
			tc.build(e)
			var se *SyntaxError
			if !errors.As(e.Err(), &se) || se.Code != tc.code {
				t.Fatalf("Err() = %v, want code %v", e.Err(), tc.code)
			}
			// After an error the encoder writes nothing more.
			n := len(e.Bytes())
			e.Start(AirSyncSync)
			e.String("more")
			e.End()
			if len(e.Bytes()) != n || e.Err() != se {
				t.Error("encoder kept writing after an error")
			}
		})
	}
}

func TestAppendMBUint32(t *testing.T) {
	tests := []struct {
		v    uint32
		want []byte
	}{
		{0, []byte{0x00}},
		{0x6A, []byte{0x6A}},
		{0x7F, []byte{0x7F}},
		{0x80, []byte{0x81, 0x00}},
		{0xA0, []byte{0x81, 0x20}},
		{0x3FFF, []byte{0xFF, 0x7F}},
		{0x4000, []byte{0x81, 0x80, 0x00}},
		{1 << 30, []byte{0x84, 0x80, 0x80, 0x80, 0x00}},
		{0xFFFFFFFF, []byte{0x8F, 0xFF, 0xFF, 0xFF, 0x7F}},
	}
	for _, tc := range tests {
		got := AppendMBUint32([]byte{0xEE}, tc.v)
		if !bytes.Equal(got, append([]byte{0xEE}, tc.want...)) {
			t.Errorf("AppendMBUint32(%#x) = % X, want EE % X", tc.v, got, tc.want)
		}
		// The decoder reads it back as an OPAQUE length.
		d := Decoder{data: tc.want, limits: DefaultLimits}
		v, err := d.mbUint32("test")
		if err != nil || v != tc.v || d.pos != len(tc.want) {
			t.Errorf("mbUint32(% X) = %#x, %v", tc.want, v, err)
		}
	}
}

// TestEncodeDecodeOpaqueSizes round-trips OPAQUE lengths across mb_u_int32
// byte boundaries.
func TestEncodeDecodeOpaqueSizes(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 70000} {
		payload := bytes.Repeat([]byte{0xAB}, n)
		e := NewEncoder(nil)
		e.Header()
		e.Start(ComposeMailSendMail)
		e.Start(ComposeMailMime)
		e.Opaque(payload)
		e.End()
		e.End()
		d := NewDecoder(e.Bytes())
		var got []byte
		for {
			tok, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			if tok.Kind == Opaque {
				if tok.Tag != ComposeMailMime {
					t.Errorf("opaque enclosed by %v", tok.Tag)
				}
				got = tok.Data
			}
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("n=%d: opaque mismatch (got %d bytes)", n, len(got))
		}
	}
}
