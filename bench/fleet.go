package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// RunConfig describes one fleet run (`easbench run`).
type RunConfig struct {
	Target    string      // base URL of the gateway (or a CAS), or its EAS URL (NormalizeTarget)
	TLSConfig *tls.Config // for https targets
	Devices   int
	Duration  time.Duration
	Ramp      time.Duration  // devices start evenly over this period (DefaultRamp is what easbench uses unless told)
	Mix       map[string]int // profile name → weight (default DefaultMix)
	// Heartbeat is the Ping HeartbeatInterval devices send (default 295s,
	// protocol time); TimeScale must equal the fake CAS's.
	Heartbeat  time.Duration
	TimeScale  float64
	UserPrefix string // users are UserPrefix0001, ... (default "u")
	Password   string
	// SendMailRate is the probability that a device sends a mail after a
	// Ping answer (default 0.05); AttachmentRate the probability that it
	// downloads an attachment it just synced (default 0.3).
	SendMailRate   float64
	AttachmentRate float64
	// SendAttachmentSize is the size of the attachment of sent mail
	// (default 32 KiB).
	SendAttachmentSize int
	// Timeout bounds ordinary requests (default 60s).
	Timeout time.Duration
	// PID, when non-zero, is the gateway process sampled for RSS and CPU.
	PID int
	// CASPID, when non-zero, is the fake CAS's own process, sampled the
	// same way (Report.CAS); SampleSelf samples this process, the load
	// generator (Report.Client). Compare sets both.
	CASPID     int
	SampleSelf bool
	// Progress receives a progress line while running (nil: none);
	// ProgressTTY rewrites one line in place instead of printing lines.
	Progress    io.Writer
	ProgressTTY bool
	// VerifyContent checks attachment bytes against the fake CAS's
	// generator (only meaningful when the upstream is a FakeCAS).
	VerifyContent bool
	// Seed makes device behaviour reproducible (0: fixed default).
	Seed uint64
	// Scenario is what devices do after their life-cycle set-up:
	// "lifecycle" (default) runs Direct Push (the Ping loop with syncs,
	// mail and downloads); "small" sends back-to-back small Sync requests on
	// the Inbox (the current sync key, no changes: a few hundred bytes each
	// way), a closed loop that measures small-request throughput and latency.
	Scenario string
}

// Scenarios accepted in RunConfig.Scenario.
const (
	ScenarioLifecycle = "lifecycle"
	ScenarioSmall     = "small"
)

func (c *RunConfig) defaults() error {
	if c.Target == "" {
		return errors.New("run: no target URL")
	}
	t, err := NormalizeTarget(c.Target)
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	c.Target = t
	if c.Devices <= 0 {
		return errors.New("run: --devices must be positive")
	}
	if c.Duration <= 0 {
		return errors.New("run: --duration must be positive")
	}
	switch c.Scenario {
	case "":
		c.Scenario = ScenarioLifecycle
	case ScenarioLifecycle, ScenarioSmall:
	default:
		return fmt.Errorf("run: unknown --scenario %q (want lifecycle or small)", c.Scenario)
	}
	if c.Mix == nil {
		c.Mix = DefaultMix
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 295 * time.Second
	}
	if c.TimeScale <= 0 {
		c.TimeScale = 1
	}
	if c.UserPrefix == "" {
		c.UserPrefix = "u"
	}
	if c.SendMailRate == 0 {
		c.SendMailRate = 0.05
	}
	if c.AttachmentRate == 0 {
		c.AttachmentRate = 0.3
	}
	if c.SendAttachmentSize == 0 {
		c.SendAttachmentSize = 32 << 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	return nil
}

type fleet struct {
	cfg     RunConfig
	rec     *Recorder
	client  *fasthttp.Client
	start   time.Time
	end     time.Time
	held    atomic.Int64
	maxHeld atomic.Int64
	setUp   atomic.Int64
	active  atomic.Int64

	decMu     sync.Mutex
	decisions FleetDecisions // each device's Decision when it stopped
}

// noteDecision counts the gateway's decision for d at the end of its run.
func (f *fleet) noteDecision(d *Device) {
	f.decMu.Lock()
	defer f.decMu.Unlock()
	switch d.Decision() {
	case DecisionAllowed:
		f.decisions.Allowed++
	case DecisionQuarantined:
		f.decisions.Quarantined++
	case DecisionBlocked:
		f.decisions.Blocked++
	default:
		f.decisions.Unknown++
	}
}

// DefaultRamp is the ramp easbench uses when --ramp is not given: a
// quarter of the run, at most one heartbeat (in wall time), so that the
// devices' set-ups and Pings spread over the run instead of all falling in
// its first half second.
func DefaultRamp(duration, heartbeat time.Duration, timeScale float64) time.Duration {
	r := duration / 4
	if timeScale <= 0 {
		timeScale = 1
	}
	if hb := time.Duration(float64(heartbeat) / timeScale); hb > 0 && hb < r {
		r = hb
	}
	return r
}

// Run drives cfg.Devices simulated phones at cfg.Target for cfg.Duration
// and returns the report. Each device runs the real life cycle (OPTIONS,
// two-phase Provision, Settings, FolderSync, Sync until done) and then the
// Ping loop, syncing when mail arrives, sometimes downloading an
// attachment and sending mail with an attachment.
func Run(cfg RunConfig) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	f := &fleet{cfg: cfg, client: NewHTTPClient(cfg.TLSConfig)}
	f.start = time.Now()
	f.end = f.start.Add(cfg.Duration)
	slice := cfg.Duration / 120
	if slice < 100*time.Millisecond {
		slice = 100 * time.Millisecond
	}
	f.rec = NewRecorder(f.start, slice)

	var procs runProcs
	if cfg.PID > 0 {
		var err error
		if procs.gateway, err = newProcSampler(cfg.PID); err != nil {
			return nil, err
		}
	}
	if cfg.CASPID > 0 {
		procs.cas, _ = newProcSampler(cfg.CASPID) // nil when it already exited
	}
	if cfg.SampleSelf {
		procs.self, _ = newProcSampler(os.Getpid())
	}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		f.monitor(stop, slice, &procs)
	}()

	profiles := assignProfiles(cfg.Mix, cfg.Devices)
	var wg sync.WaitGroup
	for i, p := range profiles {
		delay := time.Duration(0)
		if cfg.Ramp > 0 && cfg.Devices > 1 {
			delay = cfg.Ramp * time.Duration(i) / time.Duration(cfg.Devices)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !f.sleepUntil(f.start.Add(delay)) {
				return
			}
			f.device(i, p)
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	if cfg.ProgressTTY && cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress)
	}
	return f.report(time.Since(f.start), &procs), nil
}

// sleepUntil waits until t or the end of the run; false when the run ended.
func (f *fleet) sleepUntil(t time.Time) bool {
	if d := time.Until(t); d > 0 {
		if left := time.Until(f.end); d > left {
			time.Sleep(left)
			return false
		}
		time.Sleep(d)
	}
	return time.Now().Before(f.end)
}

func (f *fleet) monitor(stop <-chan struct{}, slice time.Duration, procs *runProcs) {
	tick := time.NewTicker(slice)
	defer tick.Stop()
	every := time.Second
	if !f.cfg.ProgressTTY {
		every = 10 * time.Second
	}
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			h := f.held.Load()
			f.rec.setHeld(now, h)
			procs.sample()
			if f.cfg.Progress != nil && now.Sub(last) >= every {
				last = now
				f.progress(now)
			}
		}
	}
}

func (f *fleet) progress(now time.Time) {
	req, errs, p99 := f.rec.totals()
	el := now.Sub(f.start).Seconds()
	line := fmt.Sprintf("t=%4.0fs devices=%d/%d set-up=%d requests=%d (%.0f/s) errors=%d held-pings=%d p99=%.1fms",
		el, f.active.Load(), f.cfg.Devices, f.setUp.Load(), req, float64(req)/max(el, 0.001), errs, f.held.Load(), p99)
	if f.cfg.ProgressTTY {
		fmt.Fprintf(f.cfg.Progress, "\r\x1b[2K%s", line)
	} else {
		fmt.Fprintln(f.cfg.Progress, line)
	}
}

// fail counts an error that its Sample did not already count (protocol
// errors found while interpreting an answer) and keeps the first message of
// each kind for the report.
func (f *fleet) fail(d *Device, cmd string, err error) {
	if IsCanceled(err) {
		return
	}
	d.NoteRefusal(err)
	kind := ErrorKind(err)
	var pe *ProtocolError
	if errors.As(err, &pe) && !pe.recorded {
		f.rec.RecordError(cmd, kind, err.Error())
	}
	if !IsPolicyAnswer(kind) {
		f.rec.noteError(kind, err.Error())
	}
}

// pause backs off after an error: Retry-After for a 503, otherwise one
// second, both divided by the time scale and at least 10 ms. It returns
// false when the run ended meanwhile.
func (f *fleet) pause(err error) bool {
	d := time.Second
	var he *HTTPError
	if errors.As(err, &he) && he.RetryAfter > 0 {
		d = he.RetryAfter
	}
	d = time.Duration(float64(d) / f.cfg.TimeScale)
	if d < 10*time.Millisecond {
		d = 10 * time.Millisecond
	}
	return f.sleepUntil(time.Now().Add(d))
}

func (f *fleet) device(i int, p Profile) {
	f.active.Add(1)
	defer f.active.Add(-1)
	rng := rand.New(rand.NewPCG(f.cfg.Seed+1, uint64(i)))
	d := NewDevice(DeviceConfig{
		Target:        f.cfg.Target,
		User:          fmt.Sprintf("%s%04d", f.cfg.UserPrefix, i+1),
		Password:      f.cfg.Password,
		DeviceID:      p.deviceID(i),
		Profile:       p,
		Client:        f.client,
		Timeout:       f.cfg.Timeout,
		TimeScale:     f.cfg.TimeScale,
		Record:        f.rec.Record,
		NotAfter:      f.end,
		VerifyContent: f.cfg.VerifyContent,
	})
	d.held, d.maxHeld = &f.held, &f.maxHeld
	defer f.noteDecision(d)
	for time.Now().Before(f.end) {
		if err := d.Setup(); err != nil {
			f.fail(d, "Setup", err)
			if !f.pause(err) {
				return
			}
			continue
		}
		f.setUp.Add(1)
		if f.cfg.Scenario == ScenarioSmall {
			f.smallLoop(d)
			continue
		}
		f.pingLoop(d, rng)
	}
}

// smallLoop sends small Sync requests back to back until the run ends or
// an error calls for a new life cycle.
func (f *fleet) smallLoop(d *Device) {
	for time.Now().Before(f.end) {
		if _, _, err := d.Sync(d.InboxID); err != nil {
			f.fail(d, "Sync", err)
			if IsCanceled(err) || !f.pause(err) || ErrorKind(err) == "protocol" {
				return
			}
		}
	}
}

// pingLoop runs Direct Push until the run ends or an error calls for a
// new life cycle.
func (f *fleet) pingLoop(d *Device, rng *rand.Rand) {
	hb := int(f.cfg.Heartbeat / time.Second)
	for time.Now().Before(f.end) {
		st, _, err := d.Ping(hb)
		if err != nil {
			f.fail(d, "Ping", err)
			if IsCanceled(err) || !f.pause(err) {
				return
			}
			if ErrorKind(err) == "protocol" {
				return
			}
			continue
		}
		switch st {
		case 5:
			hb = d.HeartbeatLimit
		case 7:
			if err := d.FolderSync(); err != nil {
				f.fail(d, "FolderSync", err)
				return
			}
		case 2:
			seen := len(d.Attachments)
			if _, err := d.SyncAll(d.InboxID); err != nil {
				f.fail(d, "Sync", err)
				if IsCanceled(err) || !f.pause(err) || ErrorKind(err) == "protocol" {
					return
				}
				continue
			}
			if len(d.Attachments) > seen && rng.Float64() < f.cfg.AttachmentRate {
				if _, err := d.FetchAttachment(d.Attachments[len(d.Attachments)-1]); err != nil {
					f.fail(d, "ItemOperations", err)
					if IsCanceled(err) || !f.pause(err) {
						return
					}
				}
			}
		}
		if rng.Float64() < f.cfg.SendMailRate && time.Now().Before(f.end) {
			if err := d.SendMail(f.cfg.SendAttachmentSize); err != nil {
				f.fail(d, "SendMail", err)
				if IsCanceled(err) || !f.pause(err) {
					return
				}
			}
		}
	}
}
