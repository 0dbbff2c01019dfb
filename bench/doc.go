// Package bench is easgate's load harness: a fake Exchange Client Access
// Server (FakeCAS) that speaks enough of MS-ASHTTP/MS-ASCMD/MS-ASPROV for real
// client life cycles (OPTIONS, two-phase Provision, Settings, FolderSync,
// windowed Sync, held Ping and Sync, ItemOperations, GetAttachment,
// SendMail), an EAS client (Device) that behaves like the real mail apps
// (their User-Agent, DeviceType and DeviceInformation), a fleet runner that
// drives many such devices through a gateway, and reports (terminal table,
// JSON, HTML with inline SVG charts).
//
// bench talks to the gateway over HTTP only. It imports the standard library,
// fasthttp, eas and eas/wbxml, and must never import proxy, policy or certs:
// imports_test.go fails if it does.
package bench
