package quarantine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Event is the admin notice sent when a device enters quarantine or block
// (policy.quarantine.admin_webhook), as JSON.
type Event struct {
	// Event is "quarantine" or "block".
	Event      string    `json:"event"`
	Time       time.Time `json:"time"`
	User       string    `json:"user"`
	DeviceID   string    `json:"device_id"`
	DeviceType string    `json:"device_type,omitempty"`
	Model      string    `json:"model,omitempty"`
	OS         string    `json:"os,omitempty"`
	Client     string    `json:"client,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	// Reasons are the decision's reasons ("device-not-enrolled", ...);
	// Rule the device access rule that decided, if any.
	Reasons []string `json:"reasons,omitempty"`
	Rule    string   `json:"rule,omitempty"`
	// Enforced is false in report mode (the device was let through).
	Enforced bool `json:"enforced"`
}

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	// URL receives a POST with one Event as JSON per notice.
	URL string
	// Timeout bounds each POST (default 5 s).
	Timeout time.Duration
	// Queue is how many notices may wait; beyond it they are dropped and
	// counted (default 1024).
	Queue int
	// OnError is called (from the sender goroutine) for each failed POST.
	OnError func(ev Event, err error)
	// Client is the HTTP client (default: one with Timeout).
	Client *http.Client
}

// Notifier posts admin notices off the request path: Notify queues and
// returns at once; one goroutine sends. Safe for concurrent use.
type Notifier struct {
	cfg     NotifierConfig
	ch      chan Event
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.RWMutex
	closed  bool
	sent    atomic.Int64
	failed  atomic.Int64
	dropped atomic.Int64
}

// NewNotifier starts a Notifier. Stop it with Close.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	if cfg.URL == "" {
		return nil, errors.New("quarantine: admin webhook URL is empty")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	n := &Notifier{cfg: cfg, ch: make(chan Event, cfg.Queue)}
	n.wg.Add(1)
	go n.run()
	return n, nil
}

// Notify queues ev. It never blocks; it reports false when the notice was
// dropped (queue full or Notifier closed).
func (n *Notifier) Notify(ev Event) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		n.dropped.Add(1)
		return false
	}
	select {
	case n.ch <- ev:
		return true
	default:
		n.dropped.Add(1)
		return false
	}
}

// Stats returns how many notices were sent, failed and dropped.
func (n *Notifier) Stats() (sent, failed, dropped int64) {
	return n.sent.Load(), n.failed.Load(), n.dropped.Load()
}

// Close stops accepting notices, sends the queued ones (each still bounded
// by the timeout) and waits for the sender.
func (n *Notifier) Close() {
	n.once.Do(func() {
		n.mu.Lock()
		n.closed = true
		close(n.ch)
		n.mu.Unlock()
	})
	n.wg.Wait()
}

func (n *Notifier) run() {
	defer n.wg.Done()
	for ev := range n.ch {
		if err := n.post(ev); err != nil {
			n.failed.Add(1)
			if n.cfg.OnError != nil {
				n.cfg.OnError(ev, err)
			}
			continue
		}
		n.sent.Add(1)
	}
}

func (n *Notifier) post(ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("admin webhook: bad URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "easgate")
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		// The URL may carry a token: report the cause without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("admin webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("admin webhook: HTTP %d", resp.StatusCode)
	}
	return nil
}
