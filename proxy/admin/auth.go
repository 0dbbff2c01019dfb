package admin

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/proxy/config"
)

// Role is what a token may do.
type Role uint8

// Roles, each including the ones before it.
const (
	RoleNone    Role = iota
	RoleRead         // GET: devices, audit, report, metrics
	RoleOperate      // also device actions
	RoleAdmin        // everything
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return config.RoleRead
	case RoleOperate:
		return config.RoleOperate
	case RoleAdmin:
		return config.RoleAdmin
	}
	return "none"
}

func parseRole(s string) (Role, bool) {
	switch s {
	case config.RoleRead:
		return RoleRead, true
	case config.RoleOperate:
		return RoleOperate, true
	case config.RoleAdmin:
		return RoleAdmin, true
	}
	return RoleNone, false
}

// Token is one admin bearer token. Its secret is never logged or printed:
// String shows the name and role only.
type Token struct {
	Name   string
	Role   Role
	secret []byte
}

func (t Token) String() string { return t.Name + " (" + t.Role.String() + ")" }

// Principal is who made an admin request: a token's name and role, or
// "loopback" (role admin) when no token is configured.
type Principal struct {
	Name string
	Role Role
}

// LoadTokens reads admin.tokens and admin.token_file (a token named
// "admin" of role admin). Token files are trimmed; an empty one is an
// error, since it would match an empty bearer.
func LoadTokens(a *config.Admin) ([]Token, error) {
	var out []Token
	read := func(name, file string, role Role) error {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("admin token %q: %w", name, err)
		}
		secret := bytes.TrimSpace(b)
		if len(secret) == 0 {
			return fmt.Errorf("admin token %q: %s is empty", name, file)
		}
		out = append(out, Token{Name: name, Role: role, secret: secret})
		return nil
	}
	if a.TokenFile != "" {
		if err := read("admin", a.TokenFile, RoleAdmin); err != nil {
			return nil, err
		}
	}
	for _, t := range a.Tokens {
		r, ok := parseRole(t.Role)
		if !ok {
			return nil, fmt.Errorf("admin token %q: unknown role %q", t.Name, t.Role)
		}
		if err := read(t.Name, t.File, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// authorize finds who sent ctx. With tokens it needs "Authorization:
// Bearer <token>" matching one of them; every token is compared (in
// constant time) whatever matched, so timing says nothing about which.
// Without tokens only loopback clients are accepted (and in-process calls
// of the handler, whose RequestCtx has no connection: fasthttp reports
// 0.0.0.0 for them, which no network peer can have). It reports a reason
// for refusals (never the token).
func authorize(ctx *fasthttp.RequestCtx, tokens []Token) (Principal, string) {
	if len(tokens) == 0 {
		if ip := ctx.RemoteIP(); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) || isUnixOrPipe(ctx) {
			return Principal{Name: "loopback", Role: RoleAdmin}, ""
		}
		return Principal{}, "no admin token is configured: only loopback clients are accepted"
	}
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(string(h[:len(prefix)]), prefix) {
		return Principal{}, "missing bearer token"
	}
	p, ok := match(tokens, bytes.TrimSpace(h[len(prefix):]))
	if !ok {
		return Principal{}, whyUnknownToken
	}
	return p, ""
}

// whyUnknownToken is authorize's reason for a bearer token that matches
// none: a guess (guesses.go).
const whyUnknownToken = "unknown bearer token"

// match compares got with every token's secret in constant time, whatever
// matched, so timing says nothing about which.
func match(tokens []Token, got []byte) (Principal, bool) {
	found := -1
	for i := range tokens {
		if subtle.ConstantTimeCompare(got, tokens[i].secret) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, false
	}
	return Principal{Name: tokens[found].Name, Role: tokens[found].Role}, true
}

// isUnixOrPipe reports a client on an in-memory or Unix socket (tests,
// a local proxy): not from the network.
func isUnixOrPipe(ctx *fasthttp.RequestCtx) bool {
	switch ctx.RemoteAddr().(type) {
	case *net.TCPAddr, *net.UDPAddr:
		return false
	case *net.UnixAddr:
		return true
	}
	return false
}
