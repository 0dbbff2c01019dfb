package quarantine

import (
	"io"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// Request reading. Sync, GetItemEstimate and FolderSync requests are read
// by the eas body readers (eas.ReadSync, eas.ReadGetItemEstimate,
// eas.ReadFolderSync), which bound what they keep: at most
// eas.MaxSyncCollections collections, eas.MaxSyncCommands client commands
// and ids of eas.MaxSyncIDLen bytes; beyond that the request is refused as
// a protocol error rather than held in memory.

// maxCollections bounds the collections a device's Record keeps, as eas
// bounds the collections of one request.
const maxCollections = eas.MaxSyncCollections

// The Record keeps a cached collection's GetChanges (cachedCol, persisted)
// as -1 absent, 0 for "0" and 1 for any other value.
const (
	getChangesAbsent int8 = -1
	getChangesNo     int8 = 0
	getChangesYes    int8 = 1
)

// storeGetChanges converts GetChanges to its persisted form.
func storeGetChanges(g eas.SyncGetChanges) int8 {
	switch g {
	case eas.GetChangesNo:
		return getChangesNo
	case eas.GetChangesYes:
		return getChangesYes
	}
	return getChangesAbsent
}

// loadGetChanges converts a persisted GetChanges back.
func loadGetChanges(v int8) eas.SyncGetChanges {
	switch v {
	case getChangesNo:
		return eas.GetChangesNo
	case getChangesYes:
		return eas.GetChangesYes
	}
	return eas.GetChangesAbsent
}

// parser lists the top-level elements of a Settings request for settings
// (settings.go), which eas has no reader for. Its errors are
// *eas.BodyError, with constant messages: values from the body never
// appear in them.
type parser struct {
	d   wbxml.Decoder
	cmd string
}

// root starts reading body and returns its root element, which must be
// want.
func (p *parser) root(body []byte, want wbxml.Tag) (wbxml.Token, error) {
	p.d.Reset(body)
	p.d.SetLimits(wbxml.Limits{MaxDepth: 32, MaxStringLen: 1 << 20, MaxOpaqueLen: 16 << 20, MaxSize: 64 << 20})
	tok, err := p.next()
	if err == nil && (tok.Kind != wbxml.StartTag || tok.Tag != want) {
		err = &eas.BodyError{Command: p.cmd, Element: tok.Tag.String(), Offset: p.d.Offset(), Kind: eas.BodyWrongRoot,
			Msg: "root element is not " + want.String()}
	}
	return tok, err
}

// child returns the next child StartTag of the current element; end is
// true when the element closed. Text between elements is ignored.
func (p *parser) child() (tok wbxml.Token, end bool, err error) {
	for {
		if tok, err = p.next(); err != nil {
			return tok, false, err
		}
		switch tok.Kind {
		case wbxml.EndTag:
			return tok, true, nil
		case wbxml.StartTag:
			return tok, false, nil
		}
	}
}

// skip skips the content of the element tok started.
func (p *parser) skip(tok wbxml.Token) error {
	if !tok.HasContent {
		return nil
	}
	return p.syntax(p.d.Skip())
}

// end checks that nothing follows the root element.
func (p *parser) end() error {
	_, err := p.d.Next()
	switch err {
	case io.EOF:
		return nil
	case nil:
		return &eas.BodyError{Command: p.cmd, Offset: p.d.Offset(), Kind: eas.BodySyntax, Msg: "data after the root element"}
	}
	return p.syntax(err)
}

func (p *parser) next() (wbxml.Token, error) {
	tok, err := p.d.Next()
	return tok, p.syntax(err)
}

// syntax wraps a decoder error (io.EOF included: the root never closed).
func (p *parser) syntax(err error) error {
	if err == nil {
		return nil
	}
	return &eas.BodyError{Command: p.cmd, Offset: p.d.Offset(), Kind: eas.BodySyntax, Msg: "malformed WBXML", Err: err}
}
