package kerberos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
)

// maxKDCReply bounds a KDC reply read over TCP (a ticket with a large PAC
// is a few tens of KiB).
const maxKDCReply = 1 << 20

// kdcTransport sends a Kerberos message to the realm's KDCs over TCP
// (RFC 4120 section 7.2.2: a 4-byte big-endian length, then the message),
// trying them in order. Only TCP: Active Directory answers big tickets
// with KRB_ERR_RESPONSE_TOO_BIG over UDP anyway.
type kdcTransport struct {
	kdcs []string // host:port
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// exchange sends msg and returns the reply. A reply that is a KRB-ERROR is
// returned as messages.KRBError. When no KDC could be reached (or none
// answered in time) the error is an *Error with CauseKDCUnreachable.
func (t *kdcTransport) exchange(ctx context.Context, msg []byte) ([]byte, error) {
	var errs []error
	for _, addr := range t.kdcs {
		b, err := t.one(ctx, addr, msg)
		if err == nil {
			var ke messages.KRBError
			if ke.Unmarshal(b) == nil {
				return nil, ke
			}
			return b, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &Error{Cause: CauseKDCUnreachable, Err: errors.Join(errs...)}
}

func (t *kdcTransport) one(ctx context.Context, addr string, msg []byte) ([]byte, error) {
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(d); err != nil {
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(msg)), uint32(len(msg)))
	if _, err := c.Write(append(out, msg...)); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxKDCReply {
		return nil, fmt.Errorf("KDC reply of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	return b, nil
}
