package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Identity is what easgate knows about a verified client certificate.
type Identity struct {
	UPN          string // SAN otherName 1.3.6.1.4.1.311.20.2.3 (Microsoft User Principal Name)
	Email        string // first rfc822Name SAN
	Subject      string // full subject DN (RFC 2253 style)
	CommonName   string // subject CN
	Issuer       string // issuer DN
	SerialNumber string // lowercase hex
	Fingerprint  string // SHA-256 of the DER certificate, lowercase hex
	NotAfter     time.Time
	// Name is the value chosen by ClientConfig.IdentityFrom; never empty on
	// a successful verification.
	Name string
	// Revocation says how revocation was established: "crl", "ocsp",
	// "crl+ocsp", "unchecked" (no source applies or checking is off) or
	// "ocsp_unavailable" (soft mode let it through).
	Revocation string
}

// IdentitySource selects which certificate field becomes Identity.Name.
type IdentitySource string

// Values of ClientConfig.IdentityFrom.
const (
	IdentityUPN       IdentitySource = "upn"
	IdentityEmail     IdentitySource = "email"
	IdentitySubjectCN IdentitySource = "subject_cn"
)

var (
	oidExtSAN = []int{2, 5, 29, 17}
	// DER content octets of 1.3.6.1.4.1.311.20.2.3 (szOID_NT_PRINCIPAL_NAME).
	oidUPNContent = []byte{0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03}
)

// maxIdentityLen bounds each identity string taken from a certificate.
const maxIdentityLen = 1024

// IdentityFromCertificate returns the UPN (SAN otherName
// 1.3.6.1.4.1.311.20.2.3, a UTF8String, parsed here because crypto/x509
// ignores otherName), the first e-mail SAN and the subject CN of c. Missing
// fields are empty. err is a *SANError when the subjectAltName extension is
// malformed; the e-mail and CN are still returned in that case.
func IdentityFromCertificate(c *x509.Certificate) (upn, email, cn string, err error) {
	if c == nil {
		return "", "", "", &SANError{Msg: "nil certificate"}
	}
	if len(c.EmailAddresses) > 0 {
		email = c.EmailAddresses[0]
	}
	cn = c.Subject.CommonName
	for i := range c.Extensions {
		ext := &c.Extensions[i]
		if !ext.Id.Equal(oidExtSAN) {
			continue
		}
		upn, err = upnFromSAN(ext.Value)
		break
	}
	if len(email) > maxIdentityLen {
		email = ""
	}
	if len(cn) > maxIdentityLen {
		cn = ""
	}
	return upn, email, cn, err
}

// upnFromSAN parses a DER subjectAltName value (GeneralNames) and returns
// the first UPN otherName. It returns "" and nil when there is none.
func upnFromSAN(der []byte) (string, error) {
	in := cryptobyte.String(der)
	off := func(rest cryptobyte.String) int { return len(der) - len(rest) }
	var names cryptobyte.String
	if !in.ReadASN1(&names, casn1.SEQUENCE) {
		return "", &SANError{Offset: 0, Msg: "not a DER SEQUENCE of GeneralName"}
	}
	if !in.Empty() {
		return "", &SANError{Offset: off(in), Msg: "trailing data after GeneralNames"}
	}
	otherNameTag := casn1.Tag(0).ContextSpecific().Constructed()
	for !names.Empty() {
		start := off(names)
		var gn cryptobyte.String
		var tag casn1.Tag
		if !names.ReadAnyASN1(&gn, &tag) {
			return "", &SANError{Offset: start, Msg: "malformed GeneralName"}
		}
		if tag != otherNameTag {
			continue
		}
		// OtherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }
		// with the SEQUENCE replaced by the IMPLICIT [0] tag.
		var oid cryptobyte.String
		if !gn.ReadASN1(&oid, casn1.OBJECT_IDENTIFIER) {
			return "", &SANError{Offset: start, Msg: "otherName without type-id OBJECT IDENTIFIER"}
		}
		if !bytes.Equal(oid, oidUPNContent) {
			continue
		}
		var val cryptobyte.String
		if !gn.ReadASN1(&val, casn1.Tag(0).ContextSpecific().Constructed()) || !gn.Empty() {
			return "", &SANError{Offset: start, Msg: "UPN otherName value is not a single [0] EXPLICIT value"}
		}
		var s cryptobyte.String
		if !val.ReadASN1(&s, casn1.UTF8String) || !val.Empty() {
			return "", &SANError{Offset: start, Msg: "UPN otherName value is not a UTF8String"}
		}
		if len(s) == 0 || len(s) > maxIdentityLen || !utf8.Valid(s) {
			return "", &SANError{Offset: start, Msg: "UPN is empty, too long or not valid UTF-8"}
		}
		return string(s), nil
	}
	return "", nil
}

// newIdentity fills an Identity from a verified leaf and picks Name.
func newIdentity(leaf *x509.Certificate, from IdentitySource) (Identity, error) {
	upn, email, cn, perr := IdentityFromCertificate(leaf)
	fp := sha256.Sum256(leaf.Raw)
	id := Identity{
		UPN:          upn,
		Email:        email,
		Subject:      leaf.Subject.String(),
		CommonName:   cn,
		Issuer:       leaf.Issuer.String(),
		SerialNumber: leaf.SerialNumber.Text(16),
		Fingerprint:  hex.EncodeToString(fp[:]),
		NotAfter:     leaf.NotAfter,
	}
	switch from {
	case IdentityUPN:
		id.Name = upn
	case IdentityEmail:
		id.Name = email
	case IdentitySubjectCN:
		id.Name = cn
	}
	if id.Name == "" {
		msg := fmt.Sprintf("certificate %s (serial %s) has no %s", id.Subject, id.SerialNumber, sourceDesc(from))
		if perr != nil {
			msg += " (" + perr.Error() + ")"
		}
		return id, &VerifyError{Reason: ReasonNoIdentity, Msg: msg}
	}
	return id, nil
}

func sourceDesc(s IdentitySource) string {
	switch s {
	case IdentityUPN:
		return "UPN in subjectAltName otherName 1.3.6.1.4.1.311.20.2.3"
	case IdentityEmail:
		return "e-mail (rfc822Name) in subjectAltName"
	default:
		return "subject common name"
	}
}
