package wbxml_test

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/easgate/easgate/eas/wbxml"
)

// Read the device model from a Settings DeviceInformation request without
// building a tree, skipping everything else.
func ExampleDecoder() {
	body := []byte{
		0x03, 0x01, 0x6A, 0x00, 0x00, 0x12, 0x45, 0x56, 0x48, // Settings, DeviceInformation, Set
		0x57, 0x03, 'i', 'P', 'h', 'o', 'n', 'e', '1', '4', 'C', '5', 0x00, 0x01, // Model
		0x5A, 0x03, 'i', 'O', 'S', ' ', '1', '7', 0x00, 0x01, // OS
		0x01, 0x01, 0x01,
	}
	d := wbxml.NewDecoder(body)
	for {
		tok, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		if tok.Kind == wbxml.Text && (tok.Tag == wbxml.SettingsModel || tok.Tag == wbxml.SettingsOS) {
			fmt.Printf("%s = %s\n", tok.Tag.Name(), tok.Data)
		}
	}
	// Output:
	// Model = iPhone14C5
	// OS = iOS 17
}

// Build the body Exchange returns to a blocked 14.x device on FolderSync.
func ExampleEncoder() {
	e := wbxml.NewEncoder(make([]byte, 0, 32))
	e.Header()
	e.Start(wbxml.FolderHierarchyFolderSync)
	e.Element(wbxml.FolderHierarchyStatus, "129")
	e.End()
	if err := e.Err(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% X\n", e.Bytes())
	// Output:
	// 03 01 6A 00 00 07 56 4C 03 31 32 39 00 01 01
}

func ExampleToXML() {
	body := []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x47, 0x03, '1', 0x00, 0x01, 0x01}
	if err := wbxml.ToXML(os.Stdout, body, wbxml.XMLOptions{}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// <?xml version="1.0" encoding="utf-8"?>
	// <Ping xmlns="Ping">
	//   <Status>1</Status>
	// </Ping>
}

func ExampleFromXML() {
	b, err := wbxml.FromXML(strings.NewReader(`<Ping xmlns="Ping"><Status>1</Status></Ping>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% X\n", b)
	// Output:
	// 03 01 6A 00 00 0D 45 47 03 31 00 01 01
}

func ExampleLookupTag() {
	t, ok := wbxml.LookupTag("Settings", "DeviceInformation")
	fmt.Println(t, ok, t == wbxml.SettingsDeviceInformation)
	// Output:
	// Settings:DeviceInformation true true
}
