package bench

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/easgate/easgate/eas/wbxml"
)

// node is one element of a small decoded WBXML document. The fake CAS and
// the simulated devices decode whole bodies (they are bounded by the
// decoder's limits and by maxTreeNodes) because neither is on easgate's hot
// path; easgate itself uses the eas pull readers.
type node struct {
	tag    wbxml.Tag
	text   []byte // concatenated Text and Opaque content (a copy)
	opaque bool
	kids   []*node
}

// maxTreeNodes bounds the number of elements decoded from one body, so
// memory stays proportional to the input even for hostile bodies.
const maxTreeNodes = 200000

var errTreeTooLarge = errors.New("bench: WBXML body has too many elements")

// decodeTree decodes a whole WBXML document into a tree. Errors are the
// decoder's *wbxml.SyntaxError or errTreeTooLarge.
func decodeTree(body []byte) (*node, error) {
	d := wbxml.NewDecoder(body)
	var root *node
	var stack []*node
	count := 0
	for {
		tok, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok.Kind {
		case wbxml.StartTag:
			count++
			if count > maxTreeNodes {
				return nil, errTreeTooLarge
			}
			n := &node{tag: tok.Tag}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("bench: WBXML body has two root elements")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			if tok.HasContent {
				stack = append(stack, n)
			}
		case wbxml.EndTag:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case wbxml.Text, wbxml.Opaque:
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.text = append(p.text, tok.Data...)
				if tok.Kind == wbxml.Opaque {
					p.opaque = true
				}
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("bench: WBXML body has no root element")
	}
	return root, nil
}

// child returns the first direct child with tag t, or nil. It is safe on a
// nil receiver so lookups can be chained.
func (n *node) child(t wbxml.Tag) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.tag == t {
			return k
		}
	}
	return nil
}

// children returns every direct child with tag t.
func (n *node) children(t wbxml.Tag) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.tag == t {
			out = append(out, k)
		}
	}
	return out
}

// path follows a chain of child tags.
func (n *node) path(tags ...wbxml.Tag) *node {
	for _, t := range tags {
		n = n.child(t)
	}
	return n
}

// str returns the text of the child with tag t ("" if absent).
func (n *node) str(t wbxml.Tag) string {
	c := n.child(t)
	if c == nil {
		return ""
	}
	return string(c.text)
}

// has reports whether a child with tag t exists.
func (n *node) has(t wbxml.Tag) bool { return n.child(t) != nil }

// int returns the integer text of the child with tag t.
func (n *node) int(t wbxml.Tag) (int, bool) {
	c := n.child(t)
	if c == nil {
		return 0, false
	}
	v, err := strconv.Atoi(string(c.text))
	if err != nil {
		return 0, false
	}
	return v, true
}
