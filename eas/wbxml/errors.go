package wbxml

import "strconv"

// ErrorCode classifies a decoding or encoding failure.
type ErrorCode uint8

// Error codes carried by *SyntaxError.
const (
	// ErrTruncated: the input ended inside the header, a token or a field.
	ErrTruncated ErrorCode = iota + 1
	// ErrBadHeader: unsupported WBXML version or charset.
	ErrBadHeader
	// ErrBadMBUint32: a multi-byte integer longer than 5 bytes or above 2^32-1.
	ErrBadMBUint32
	// ErrUnknownPage: SWITCH_PAGE to a page above 25.
	ErrUnknownPage
	// ErrUnexpectedEnd: END with no element open.
	ErrUnexpectedEnd
	// ErrUnterminatedString: STR_I without its NUL terminator.
	ErrUnterminatedString
	// ErrStringTooLong: an inline string longer than Limits.MaxStringLen.
	ErrStringTooLong
	// ErrOpaqueTooLong: an OPAQUE length above Limits.MaxOpaqueLen or the
	// remaining input.
	ErrOpaqueTooLong
	// ErrTooDeep: element nesting deeper than Limits.MaxDepth.
	ErrTooDeep
	// ErrTooLarge: input larger than Limits.MaxSize.
	ErrTooLarge
	// ErrUnsupportedToken: ENTITY, LITERAL*, EXT*, PI, STR_T or attributes,
	// none of which ActiveSync uses.
	ErrUnsupportedToken
	// ErrInvalidUTF8: an inline string that is not valid UTF-8.
	ErrInvalidUTF8
	// ErrTrailingData: bytes after the root element closed.
	ErrTrailingData
	// ErrUnclosed: the input ended with elements still open.
	ErrUnclosed
	// ErrNoRoot: the body has a header but no root element.
	ErrNoRoot
	// ErrContentOutsideRoot: a string or OPAQUE outside any element.
	ErrContentOutsideRoot
	// ErrBadSkip: Skip called with no element open.
	ErrBadSkip
	// ErrBadTag: the encoder was given a tag with no valid page or token.
	ErrBadTag
	// ErrNULInString: the encoder was given a string containing NUL.
	ErrNULInString
	// ErrXML: FromXML met XML it cannot encode (unknown element, attribute...).
	ErrXML
)

var codeNames = [...]string{
	ErrTruncated:          "truncated input",
	ErrBadHeader:          "bad header",
	ErrBadMBUint32:        "bad mb_u_int32",
	ErrUnknownPage:        "unknown code page",
	ErrUnexpectedEnd:      "END with no open element",
	ErrUnterminatedString: "unterminated string",
	ErrStringTooLong:      "string too long",
	ErrOpaqueTooLong:      "opaque data too long",
	ErrTooDeep:            "nesting too deep",
	ErrTooLarge:           "input too large",
	ErrUnsupportedToken:   "unsupported token",
	ErrInvalidUTF8:        "invalid UTF-8",
	ErrTrailingData:       "trailing data",
	ErrUnclosed:           "unclosed element",
	ErrNoRoot:             "no root element",
	ErrContentOutsideRoot: "content outside root element",
	ErrBadSkip:            "skip with no open element",
	ErrBadTag:             "invalid tag",
	ErrNULInString:        "NUL in string",
	ErrXML:                "unencodable XML",
}

// String returns a short description of the code.
func (c ErrorCode) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}

// SyntaxError describes malformed WBXML (or, from the Encoder and FromXML,
// input that cannot be encoded). Offset is the byte offset in the WBXML input
// where the problem was found (for the Encoder: the output length at the time;
// for FromXML: the XML input offset). Msg never contains payload bytes beyond a
// short token description, so it is safe to log.
type SyntaxError struct {
	Offset int
	Code   ErrorCode
	Msg    string
}

// Error returns "wbxml: <msg> at byte N".
func (e *SyntaxError) Error() string {
	return "wbxml: " + e.Msg + " at byte " + strconv.Itoa(e.Offset)
}
