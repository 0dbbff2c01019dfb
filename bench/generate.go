package bench

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"time"
)

// mailEpoch is the DateReceived of message 0 of every generated mailbox.
var mailEpoch = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// genMessage is one generated Inbox message. Everything is derived from
// the mailbox owner and the message number, so the fake CAS holds only a
// counter per mailbox, never message contents.
type genMessage struct {
	N          int
	ServerID   string // "<folder>:<n>"
	From, To   string
	Subject    string
	Date       time.Time
	BodySize   int
	Attachment bool
	AttachRef  string // FileReference / AttachmentName
	AttachName string
	AttachSize int
}

// attachEvery: every third generated message carries one attachment.
const attachEvery = 3

func (f *FakeCAS) message(user string, n int) genMessage {
	m := genMessage{
		N:        n,
		ServerID: fmt.Sprintf("%s:%d", folderInbox, n),
		From:     fmt.Sprintf("\"Sender %d\" <sender%d@example.com>", n%7, n%7),
		To:       fmt.Sprintf("<%s@example.com>", user),
		Subject:  fmt.Sprintf("Generated message %d for %s", n, user),
		Date:     mailEpoch.Add(time.Duration(n) * time.Minute),
		BodySize: f.cfg.MessageSize,
	}
	if f.cfg.AttachmentSize > 0 && n%attachEvery == 0 {
		m.Attachment = true
		m.AttachRef = fmt.Sprintf("%s:%d:0", folderInbox, n)
		m.AttachName = fmt.Sprintf("report-%d.bin", n)
		m.AttachSize = f.cfg.AttachmentSize
	}
	return m
}

// seedFor derives a generator seed from a string.
func seedFor(s string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, s)
	v := h.Sum64()
	if v == 0 {
		v = 1
	}
	return v
}

// genReader streams size pseudo-random bytes (xorshift64*) without holding
// them: attachments of any size cost a few bytes of state.
type genReader struct {
	state     uint64
	remaining int64
	text      bool // printable text (message bodies) instead of binary
	col       int
	pend      [8]byte // binary mode: the current word ...
	npend     int     // ... and how many of its bytes are still unread
}

func newGenReader(seed string, size int64, text bool) *genReader {
	return &genReader{state: seedFor(seed), remaining: size, text: text}
}

const bodyAlphabet = "abcdefghijklmnopqrstuvwxyz      eeeaaiioon.,"

func (g *genReader) Read(p []byte) (int, error) {
	if g.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.remaining {
		p = p[:g.remaining]
	}
	if g.text {
		for i := range p {
			g.col++
			if g.col >= 72 {
				g.col = 0
				p[i] = '\n'
				continue
			}
			p[i] = bodyAlphabet[int(g.next()>>56)%len(bodyAlphabet)]
		}
	} else {
		// Binary: eight bytes per step. The byte stream does not depend on
		// how reads are split because the state advances per 8-byte word
		// and a partial word is kept in pend.
		i := 0
		for i < len(p) {
			if g.npend == 0 {
				binary.LittleEndian.PutUint64(g.pend[:], g.next())
				g.npend = 8
			}
			n := copy(p[i:], g.pend[8-g.npend:])
			g.npend -= n
			i += n
		}
	}
	g.remaining -= int64(len(p))
	return len(p), nil
}

// next advances the xorshift64* state.
func (g *genReader) next() uint64 {
	g.state ^= g.state >> 12
	g.state ^= g.state << 25
	g.state ^= g.state >> 27
	return g.state * 2685821657736338717
}

// genBytes returns the whole generated content (used for small bodies).
func genBytes(seed string, size int, text bool) []byte {
	b := make([]byte, size)
	_, _ = io.ReadFull(newGenReader(seed, int64(size), text), b)
	return b
}

// base64Reader encodes src as standard base64 on the fly. It reads src in
// blocks that are multiples of 3 bytes so block encodings concatenate into
// one valid encoding.
type base64Reader struct {
	src  io.Reader
	in   [3 * 1024]byte
	out  [4 * 1024]byte
	pend []byte
	done bool
}

func (r *base64Reader) Read(p []byte) (int, error) {
	for len(r.pend) == 0 {
		if r.done {
			return 0, io.EOF
		}
		n, err := io.ReadFull(r.src, r.in[:])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			r.done = true
		} else if err != nil {
			return 0, err
		}
		if n == 0 {
			continue
		}
		base64.StdEncoding.Encode(r.out[:], r.in[:n])
		r.pend = r.out[:base64.StdEncoding.EncodedLen(n)]
	}
	n := copy(p, r.pend)
	r.pend = r.pend[n:]
	return n, nil
}
