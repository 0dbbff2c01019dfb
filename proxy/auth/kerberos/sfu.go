package kerberos

// The S4U messages ([MS-SFU], "Kerberos Protocol Extensions: Service for
// User and Constrained Delegation Protocol"), built on gokrb5's RFC 4120
// types. gokrb5 v8.4.4 has no S4U; this file is the part to delete when a
// released library has it (go-krb5/krb5 has an open pull request).

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/rfc4757"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KDC options (RFC 4120 section 5.4.1, KDCOptions; bit 0 is the most
// significant bit of the first octet).
const (
	optForwardable = 1
	optRenewable   = 8
	// optCNameInAddlTkt asks the KDC to take the client name from the
	// additional ticket: S4U2Proxy, [MS-SFU] 2.2.3 ("cname-in-addl-tkt",
	// bit 14 of KDCOptions).
	optCNameInAddlTkt = 14
	optCanonicalize   = 15
)

// authPackage is PA-FOR-USER's auth-package: "Kerberos" ([MS-SFU] 2.2.1).
const authPackage = "Kerberos"

// keyUsageForUserCksum is the key usage of PA-FOR-USER's checksum:
// KERB_NON_KERB_CKSUM_SALT, 17 ([MS-SFU] 2.2.1).
const keyUsageForUserCksum = 17

// paForUser is PA-FOR-USER ([MS-SFU] 2.2.1), padata-type 129:
//
//	PA-FOR-USER ::= SEQUENCE {
//	    userName        [0] PrincipalName,
//	    userRealm       [1] Realm,
//	    cksum           [2] Checksum,
//	    auth-package    [3] KerberosString
//	}
type paForUser struct {
	UserName    types.PrincipalName `asn1:"explicit,tag:0"`
	UserRealm   string              `asn1:"generalstring,explicit,tag:1"`
	Cksum       types.Checksum      `asn1:"explicit,tag:2"`
	AuthPackage string              `asn1:"generalstring,explicit,tag:3"`
}

// forUserChecksumInput is the byte string PA-FOR-USER's checksum covers
// ([MS-SFU] 2.2.1): the name type as a 4-byte little-endian integer, then
// the name strings, the realm and the auth-package, concatenated.
func forUserChecksumInput(user types.PrincipalName, realm string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(user.NameType))
	for _, s := range user.NameString {
		b = append(b, s...)
	}
	b = append(b, realm...)
	return append(b, authPackage...)
}

// marshalPAForUser encodes PA-FOR-USER for user@realm. The checksum is
// KERB_CHECKSUM_HMAC_MD5 (-138, RFC 4757 section 4) keyed with the TGT's
// session key whatever its enctype, as [MS-SFU] 2.2.1 says and Windows and
// Samba check.
func marshalPAForUser(user types.PrincipalName, realm string, sessionKey types.EncryptionKey) ([]byte, error) {
	sum, err := rfc4757.Checksum(sessionKey.KeyValue, keyUsageForUserCksum, forUserChecksumInput(user, realm))
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(paForUser{
		UserName:    user,
		UserRealm:   realm,
		Cksum:       types.Checksum{CksumType: chksumtype.KERB_CHECKSUM_HMAC_MD5, Checksum: sum},
		AuthPackage: authPackage,
	})
}

// tgsParams are the settings every TGS-REQ of a Delegator shares.
type tgsParams struct {
	realm    string
	lifetime time.Duration
	etypes   []int32
	now      func() time.Time
}

// newTGSBody is a TGS-REQ body (RFC 4120 section 5.4.1) for sname: no
// addresses, forwardable (an S4U2Self ticket must be forwardable for
// S4U2Proxy to accept it, [MS-SFU] 3.2.5.2.2), a fresh nonce.
func newTGSBody(p tgsParams, cname, sname types.PrincipalName) (messages.KDCReqBody, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt32))
	if err != nil {
		return messages.KDCReqBody{}, err
	}
	b := messages.KDCReqBody{
		KDCOptions: types.NewKrbFlags(),
		CName:      cname,
		Realm:      p.realm,
		SName:      sname,
		Till:       p.now().UTC().Add(p.lifetime),
		Nonce:      int(n.Int64()),
		EType:      p.etypes,
	}
	types.SetFlag(&b.KDCOptions, optForwardable)
	types.SetFlag(&b.KDCOptions, optCanonicalize)
	return b, nil
}

// signTGSReq adds PA-TGS-REQ (RFC 4120 section 5.5.1: an AP-REQ with the
// TGT whose authenticator checksums the request body, key usage 6) in
// front of extra. The body must be final: S4U2Proxy's additional ticket is
// part of what the checksum covers.
func signTGSReq(body messages.KDCReqBody, tgt messages.Ticket, tgtKey types.EncryptionKey, cname types.PrincipalName, crealm string, extra ...types.PAData) (messages.TGSReq, error) {
	req := messages.TGSReq{KDCReqFields: messages.KDCReqFields{PVNO: iana.PVNO, MsgType: msgtype.KRB_TGS_REQ, ReqBody: body}}
	bb, err := body.Marshal()
	if err != nil {
		return req, err
	}
	et, err := crypto.GetEtype(tgtKey.KeyType)
	if err != nil {
		return req, err
	}
	sum, err := et.GetChecksumHash(tgtKey.KeyValue, bb, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		return req, err
	}
	auth, err := types.NewAuthenticator(crealm, cname)
	if err != nil {
		return req, err
	}
	auth.Cksum = types.Checksum{CksumType: et.GetHashID(), Checksum: sum}
	ap, err := messages.NewAPReq(tgt, tgtKey, auth)
	if err != nil {
		return req, err
	}
	apb, err := ap.Marshal()
	if err != nil {
		return req, err
	}
	req.PAData = append(types.PADataSequence{{PADataType: patype.PA_TGS_REQ, PADataValue: apb}}, extra...)
	return req, nil
}

// newS4U2SelfReq is the S4U2Self TGS-REQ ([MS-SFU] 3.1.5.1.1): the service
// asks, with its own TGT, for a ticket to itself (sname = its own name) in
// the name of user@userRealm, named in PA-FOR-USER.
func newS4U2SelfReq(p tgsParams, svc types.PrincipalName, tgt messages.Ticket, tgtKey types.EncryptionKey, user types.PrincipalName, userRealm string) (messages.TGSReq, error) {
	body, err := newTGSBody(p, svc, svc)
	if err != nil {
		return messages.TGSReq{}, err
	}
	pa, err := marshalPAForUser(user, userRealm, tgtKey)
	if err != nil {
		return messages.TGSReq{}, err
	}
	return signTGSReq(body, tgt, tgtKey, svc, p.realm, types.PAData{PADataType: patype.PA_FOR_USER, PADataValue: pa})
}

// newS4U2ProxyReq is the S4U2Proxy TGS-REQ ([MS-SFU] 3.1.5.2.1): a ticket
// to target with the S4U2Self ticket as the additional ticket (RFC 4120
// section 5.4.1, additional-tickets) and cname-in-addl-tkt set, so the
// KDC issues it in the name of that ticket's client. Resource-based
// constrained delegation (PA-PAC-OPTIONS, [MS-SFU] 2.2.5) is not asked
// for: the classic msDS-AllowedToDelegateTo list decides.
func newS4U2ProxyReq(p tgsParams, svc types.PrincipalName, tgt messages.Ticket, tgtKey types.EncryptionKey, evidence messages.Ticket, target types.PrincipalName) (messages.TGSReq, error) {
	body, err := newTGSBody(p, svc, target)
	if err != nil {
		return messages.TGSReq{}, err
	}
	types.SetFlag(&body.KDCOptions, optCNameInAddlTkt)
	body.AdditionalTickets = []messages.Ticket{evidence}
	return signTGSReq(body, tgt, tgtKey, svc, p.realm)
}

// errNotForwardable: the KDC issued the S4U2Self ticket without the
// FORWARDABLE flag, which it does when the service account is not trusted
// for protocol transition ("for-any-protocol", TRUSTED_TO_AUTH_FOR_DELEGATION)
// or the user is marked sensitive and cannot be delegated ([MS-SFU]
// 3.2.5.1.2). S4U2Proxy would refuse it.
var errNotForwardable = errors.New("the S4U2Self ticket is not forwardable: the service account is not trusted for protocol transition, or the user cannot be delegated")

// checkS4UReply decrypts a TGS-REP (its enc-part with the TGT session key,
// key usage 8) and checks it answers req: same nonce, same realm, a ticket
// for the service asked for, in the name of want (the impersonated user:
// unlike gokrb5's TGSRep.Verify, the client name is not the requester's).
func checkS4UReply(rep *messages.TGSRep, req messages.TGSReq, tgtKey types.EncryptionKey, want types.PrincipalName, wantRealm string) error {
	if err := rep.DecryptEncPart(tgtKey); err != nil {
		return fmt.Errorf("decrypting the TGS-REP: %w", err)
	}
	d := rep.DecryptedEncPart
	if d.Nonce != req.ReqBody.Nonce {
		return errors.New("the TGS-REP's nonce does not match the request")
	}
	if !sameName(rep.CName, want) || !equalFoldASCII(rep.CRealm, wantRealm) {
		return fmt.Errorf("the ticket is for %s@%s, not %s@%s", rep.CName.PrincipalNameString(), rep.CRealm, want.PrincipalNameString(), wantRealm)
	}
	if !rep.Ticket.SName.Equal(req.ReqBody.SName) && !d.SName.Equal(req.ReqBody.SName) {
		return fmt.Errorf("the ticket is for service %s, not %s", d.SName.PrincipalNameString(), req.ReqBody.SName.PrincipalNameString())
	}
	if d.EndTime.IsZero() {
		return errors.New("the TGS-REP has no end time")
	}
	return nil
}

// sameName compares principal names ignoring ASCII case (the KDC may
// answer with the directory's spelling when canonicalize is set) and the
// name type (RFC 4120 section 6.2).
func sameName(a, b types.PrincipalName) bool {
	if len(a.NameString) != len(b.NameString) {
		return false
	}
	for i := range a.NameString {
		if !equalFoldASCII(a.NameString[i], b.NameString[i]) {
			return false
		}
	}
	return true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// userName is the principal name of a user: one component, NT-PRINCIPAL
// (RFC 4120 section 6.2). The KDC does not canonicalise names, so the user
// part of a UPN goes with the realm rather than the whole UPN as an
// NT-ENTERPRISE name (issue 17).
func userName(user string) types.PrincipalName {
	return types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{user}}
}
