package policy

import (
	"context"
	"errors"
)

// Query is what a compliance source is asked about one device. Values are
// copies the source may keep.
type Query struct {
	User       string // as the phone sent it (DOMAIN\user, user@domain, user)
	DeviceID   string
	DeviceType string
	Model      string
	OS         string
	UserAgent  string
}

// Source answers compliance questions. Implementations live in
// policy/sources (file, http webhook, Microsoft Graph).
//
// The contract:
//   - Lookup may be slow (network) and may fail. It must honour ctx: the
//     cache gives every lookup its own deadline and never lets a phone wait
//     longer than the configured lookup timeout.
//   - A device the source does not know is not an error: answer a Verdict
//     with State StateUnknown and Valid set. Errors mean "no answer could be
//     had" (timeout, 5xx, parse failure) and trigger stale-if-error and
//     on_unavailable.
//   - Lookup must be safe for concurrent use.
type Source interface {
	Lookup(ctx context.Context, q Query) (Verdict, error)
	// Name is a short label for logs and metrics ("file", "http", "graph").
	Name() string
}

// Closer is implemented by sources that hold resources (watchers,
// background sync loops).
type Closer interface {
	Close() error
}

// ErrUnavailable is returned (wrapped) when a source cannot answer.
var ErrUnavailable = errors.New("compliance source unavailable")
