package quarantine

import (
	"io"
	"strconv"

	"github.com/easgate/easgate/eas/wbxml"
)

// Request parsing: the quarantine needs more of a Sync request than
// eas.ReadSync gives (the client's own Add/Change/Delete/Fetch items and the
// body preference), and the collections of GetItemEstimate. The parsers
// here walk the body once with the wbxml pull decoder, never panic, and
// bound what they keep.

// Limits on what a request may carry; beyond them the request is refused
// as a protocol error rather than held in memory.
const (
	maxCollections = 512   // collections per Sync / GetItemEstimate
	maxClientCmds  = 10000 // client commands per Sync request
	maxIDLen       = 256   // SyncKey, CollectionId, ServerId, ClientId, Class
)

// RequestError reports a malformed request body: the element being read
// ("AirSync:SyncKey"), the byte offset and a constant message. Values from
// the body never appear in it.
type RequestError struct {
	Command string
	Element string
	Offset  int
	Msg     string
	Err     error // the *wbxml.SyntaxError, when the WBXML itself is bad
}

func (e *RequestError) Error() string {
	s := "quarantine: " + e.Command + " request: "
	if e.Element != "" {
		s += e.Element + ": "
	}
	s += e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + " (offset " + strconv.Itoa(e.Offset) + ")"
}

func (e *RequestError) Unwrap() error { return e.Err }

// clientCmd is one item change the phone sends in a Sync request.
type clientCmd struct {
	Kind  wbxml.Tag // AirSyncAdd, AirSyncChange, AirSyncDelete or AirSyncFetch
	ID    string    // ClientId for Add, ServerId otherwise
	Class string    // per-item Class (12.x), if sent
}

// syncCol is one Collection of a Sync request.
type syncCol struct {
	SyncKey, ID, Class string
	// GetChanges: -1 absent, 0 "0", 1 present and not "0".
	GetChanges int8
	// BodyTypes lists the airsyncbase:BodyPreference Types in order.
	BodyTypes []int
	Cmds      []clientCmd
}

// syncReq is a parsed Sync request.
type syncReq struct {
	Empty            bool
	Wait, Heartbeat  int
	HasWait, HasBeat bool
	Partial          bool
	Cols             []syncCol
	nCmds            int
}

type parser struct {
	d   wbxml.Decoder
	cmd string
}

func (p *parser) fail(t wbxml.Tag, msg string) error {
	el := ""
	if t != 0 {
		el = t.String()
	}
	return &RequestError{Command: p.cmd, Element: el, Offset: p.d.Offset(), Msg: msg}
}

func (p *parser) next() (wbxml.Token, error) {
	tok, err := p.d.Next()
	if err != nil {
		if err == io.EOF {
			return tok, p.fail(0, "body ended early")
		}
		return tok, &RequestError{Command: p.cmd, Offset: p.d.Offset(), Msg: "malformed WBXML", Err: err}
	}
	return tok, nil
}

// child returns the next child StartTag of the current element, or end.
func (p *parser) child() (wbxml.Token, bool, error) {
	for {
		tok, err := p.next()
		if err != nil {
			return tok, false, err
		}
		switch tok.Kind {
		case wbxml.EndTag:
			return tok, true, nil
		case wbxml.StartTag:
			return tok, false, nil
		}
		// Text or opaque between elements: ignore.
	}
}

// skip skips the element tok started.
func (p *parser) skip(tok wbxml.Token) error {
	if !tok.HasContent {
		return nil
	}
	if err := p.d.Skip(); err != nil {
		return &RequestError{Command: p.cmd, Offset: p.d.Offset(), Msg: "malformed WBXML", Err: err}
	}
	return nil
}

// text reads the text content of the element tok started (bounded by max
// bytes) and its END.
func (p *parser) text(tok wbxml.Token, max int) (string, error) {
	if !tok.HasContent {
		return "", nil
	}
	var s []byte
	for {
		t, err := p.next()
		if err != nil {
			return "", err
		}
		switch t.Kind {
		case wbxml.EndTag:
			return string(s), nil
		case wbxml.Text, wbxml.Opaque:
			if len(s)+len(t.Data) > max {
				return "", p.fail(tok.Tag, "value too long")
			}
			s = append(s, t.Data...)
		default:
			return "", p.fail(tok.Tag, "element where text was expected")
		}
	}
}

func (p *parser) int(tok wbxml.Token) (int, error) {
	s, err := p.text(tok, 16)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(trimSpace(s))
	if err != nil || n < 0 {
		return 0, p.fail(tok.Tag, "not a non-negative number")
	}
	return n, nil
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\r' || s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	return s
}

func (p *parser) root(body []byte, want wbxml.Tag) (wbxml.Token, error) {
	p.d.Reset(body)
	p.d.SetLimits(wbxml.Limits{MaxDepth: 32, MaxStringLen: 1 << 20, MaxOpaqueLen: 16 << 20, MaxSize: 64 << 20})
	tok, err := p.next()
	if err != nil {
		return tok, err
	}
	if tok.Kind != wbxml.StartTag || tok.Tag != want {
		return tok, p.fail(tok.Tag, "wrong root element")
	}
	return tok, nil
}

// end checks that nothing follows the root element.
func (p *parser) end() error {
	_, err := p.d.Next()
	if err == io.EOF {
		return nil
	}
	if err == nil {
		return p.fail(0, "data after the root element")
	}
	return &RequestError{Command: p.cmd, Offset: p.d.Offset(), Msg: "malformed WBXML", Err: err}
}

// parseSync reads a Sync request. An empty body is valid (Empty).
func parseSync(body []byte) (*syncReq, error) {
	r := &syncReq{}
	if len(body) == 0 {
		r.Empty = true
		return r, nil
	}
	p := &parser{cmd: "Sync"}
	root, err := p.root(body, wbxml.AirSyncSync)
	if err != nil {
		return nil, err
	}
	if root.HasContent {
		if err := p.syncChildren(r); err != nil {
			return nil, err
		}
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return r, nil
}

func (p *parser) syncChildren(r *syncReq) error {
	for {
		tok, end, err := p.child()
		if err != nil || end {
			return err
		}
		switch tok.Tag {
		case wbxml.AirSyncCollections:
			if !tok.HasContent {
				continue
			}
			for {
				c, end, err := p.child()
				if err != nil {
					return err
				}
				if end {
					break
				}
				if c.Tag != wbxml.AirSyncCollection {
					if err := p.skip(c); err != nil {
						return err
					}
					continue
				}
				if len(r.Cols) >= maxCollections {
					return p.fail(c.Tag, "too many collections")
				}
				r.Cols = append(r.Cols, syncCol{GetChanges: -1})
				if err := p.syncCollection(c, &r.Cols[len(r.Cols)-1], r); err != nil {
					return err
				}
			}
		case wbxml.AirSyncWait:
			if r.Wait, err = p.int(tok); err != nil {
				return err
			}
			r.HasWait = true
		case wbxml.AirSyncHeartbeatInterval:
			if r.Heartbeat, err = p.int(tok); err != nil {
				return err
			}
			r.HasBeat = true
		case wbxml.AirSyncPartial:
			r.Partial = true
			err = p.skip(tok)
		default:
			err = p.skip(tok)
		}
		if err != nil {
			return err
		}
	}
}

func (p *parser) syncCollection(start wbxml.Token, c *syncCol, r *syncReq) error {
	if !start.HasContent {
		return nil
	}
	for {
		tok, end, err := p.child()
		if err != nil || end {
			return err
		}
		switch tok.Tag {
		case wbxml.AirSyncSyncKey:
			c.SyncKey, err = p.text(tok, maxIDLen)
		case wbxml.AirSyncCollectionId:
			c.ID, err = p.text(tok, maxIDLen)
		case wbxml.AirSyncClass:
			c.Class, err = p.text(tok, maxIDLen)
		case wbxml.AirSyncGetChanges:
			var s string
			s, err = p.text(tok, 16)
			c.GetChanges = 1
			if trimSpace(s) == "0" {
				c.GetChanges = 0
			}
		case wbxml.AirSyncOptions:
			err = p.syncOptions(tok, c)
		case wbxml.AirSyncCommands:
			err = p.syncCommands(tok, c, r)
		default:
			err = p.skip(tok)
		}
		if err != nil {
			return err
		}
	}
}

func (p *parser) syncOptions(start wbxml.Token, c *syncCol) error {
	if !start.HasContent {
		return nil
	}
	for {
		tok, end, err := p.child()
		if err != nil || end {
			return err
		}
		if tok.Tag != wbxml.AirSyncBaseBodyPreference || !tok.HasContent {
			if err := p.skip(tok); err != nil {
				return err
			}
			continue
		}
		for {
			t, end, err := p.child()
			if err != nil {
				return err
			}
			if end {
				break
			}
			if t.Tag == wbxml.AirSyncBaseType {
				n, err := p.int(t)
				if err != nil {
					return err
				}
				if len(c.BodyTypes) < 8 {
					c.BodyTypes = append(c.BodyTypes, n)
				}
				continue
			}
			if err := p.skip(t); err != nil {
				return err
			}
		}
	}
}

func (p *parser) syncCommands(start wbxml.Token, c *syncCol, r *syncReq) error {
	if !start.HasContent {
		return nil
	}
	for {
		tok, end, err := p.child()
		if err != nil || end {
			return err
		}
		switch tok.Tag {
		case wbxml.AirSyncAdd, wbxml.AirSyncChange, wbxml.AirSyncDelete, wbxml.AirSyncFetch:
		default:
			if err := p.skip(tok); err != nil {
				return err
			}
			continue
		}
		if r.nCmds >= maxClientCmds {
			return p.fail(tok.Tag, "too many client commands")
		}
		cmd := clientCmd{Kind: tok.Tag}
		if tok.HasContent {
			for {
				t, end, err := p.child()
				if err != nil {
					return err
				}
				if end {
					break
				}
				switch {
				case t.Tag == wbxml.AirSyncClientId && cmd.Kind == wbxml.AirSyncAdd,
					t.Tag == wbxml.AirSyncServerId && cmd.Kind != wbxml.AirSyncAdd:
					cmd.ID, err = p.text(t, maxIDLen)
				case t.Tag == wbxml.AirSyncClass:
					cmd.Class, err = p.text(t, maxIDLen)
				default:
					err = p.skip(t) // ApplicationData: never stored
				}
				if err != nil {
					return err
				}
			}
		}
		c.Cmds = append(c.Cmds, cmd)
		r.nCmds++
	}
}

// estimateCol is one Collection of a GetItemEstimate request.
type estimateCol struct {
	SyncKey, ID string
}

// parseEstimate reads a GetItemEstimate request: Collections > Collection >
// {airsync:SyncKey, CollectionId, ...} (12.x also sends Class and
// FilterType, 14.0+ Options; both are skipped).
func parseEstimate(body []byte) ([]estimateCol, error) {
	p := &parser{cmd: "GetItemEstimate"}
	if len(body) == 0 {
		return nil, &RequestError{Command: p.cmd, Msg: "empty body"}
	}
	root, err := p.root(body, wbxml.ItemEstimateGetItemEstimate)
	if err != nil {
		return nil, err
	}
	var cols []estimateCol
	if root.HasContent {
		for {
			tok, end, err := p.child()
			if err != nil {
				return nil, err
			}
			if end {
				break
			}
			if tok.Tag != wbxml.ItemEstimateCollections || !tok.HasContent {
				if err := p.skip(tok); err != nil {
					return nil, err
				}
				continue
			}
			for {
				c, end, err := p.child()
				if err != nil {
					return nil, err
				}
				if end {
					break
				}
				if c.Tag != wbxml.ItemEstimateCollection {
					if err := p.skip(c); err != nil {
						return nil, err
					}
					continue
				}
				if len(cols) >= maxCollections {
					return nil, p.fail(c.Tag, "too many collections")
				}
				var ec estimateCol
				if c.HasContent {
					for {
						t, end, err := p.child()
						if err != nil {
							return nil, err
						}
						if end {
							break
						}
						switch t.Tag {
						case wbxml.AirSyncSyncKey:
							ec.SyncKey, err = p.text(t, maxIDLen)
						case wbxml.ItemEstimateCollectionId:
							ec.ID, err = p.text(t, maxIDLen)
						default:
							err = p.skip(t)
						}
						if err != nil {
							return nil, err
						}
					}
				}
				cols = append(cols, ec)
			}
		}
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, p.fail(wbxml.ItemEstimateCollections, "no collections")
	}
	return cols, nil
}

// folderSyncKey reads the SyncKey of a FolderSync request.
func folderSyncKey(body []byte) (string, error) {
	p := &parser{cmd: "FolderSync"}
	if len(body) == 0 {
		return "", &RequestError{Command: p.cmd, Msg: "empty body"}
	}
	root, err := p.root(body, wbxml.FolderHierarchyFolderSync)
	if err != nil {
		return "", err
	}
	key, seen := "", false
	if root.HasContent {
		for {
			tok, end, err := p.child()
			if err != nil {
				return "", err
			}
			if end {
				break
			}
			if tok.Tag == wbxml.FolderHierarchySyncKey {
				if key, err = p.text(tok, maxIDLen); err != nil {
					return "", err
				}
				seen = true
				continue
			}
			if err := p.skip(tok); err != nil {
				return "", err
			}
		}
	}
	if err := p.end(); err != nil {
		return "", err
	}
	if !seen {
		return "", p.fail(wbxml.FolderHierarchySyncKey, "missing")
	}
	return key, nil
}
