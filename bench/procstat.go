package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procSampler reads a process's RSS and CPU time from /proc/PID.
type procSampler struct {
	pid       int
	mu        sync.Mutex
	startCPU  float64
	lastCPU   float64
	startRSS  int64
	maxRSS    int64
	lastRSS   int64
	startTime time.Time
	lastTime  time.Time
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func newProcSampler(pid int) (*procSampler, error) {
	p := &procSampler{pid: pid}
	rss, cpu, err := readProc(pid)
	if err != nil {
		return nil, fmt.Errorf("--pid %d: %w", pid, err)
	}
	p.startRSS, p.maxRSS, p.lastRSS = rss, rss, rss
	p.startCPU, p.lastCPU = cpu, cpu
	p.startTime = time.Now()
	p.lastTime = p.startTime
	return p, nil
}

// readProc returns VmRSS in KiB and utime+stime in seconds.
func readProc(pid int) (rssKiB int64, cpuSec float64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			if len(f) > 0 {
				rssKiB, _ = strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may contain spaces; fields start after ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14 utime
	st, _ := strconv.ParseFloat(f[12], 64) // field 15 stime
	return rssKiB, (ut + st) / clockTicks, nil
}

func (p *procSampler) sample() {
	rss, cpu, err := readProc(p.pid)
	if err != nil {
		return // the process may have exited; keep the last values
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastRSS, p.lastCPU, p.lastTime = rss, cpu, time.Now()
	if rss > p.maxRSS {
		p.maxRSS = rss
	}
}

func (p *procSampler) report() *ProcReport {
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &ProcReport{PID: p.pid, RSSStartKiB: p.startRSS, RSSMaxKiB: p.maxRSS, RSSEndKiB: p.lastRSS,
		CPUSeconds: p.lastCPU - p.startCPU}
	if el := p.lastTime.Sub(p.startTime).Seconds(); el > 0 {
		r.CPUPercent = 100 * r.CPUSeconds / el
	}
	return r
}

// legSampler samples, during one compare leg, the fake CAS's own process
// (when it runs as a subprocess) and this process, the load generator.
type legSampler struct {
	cas, self *procSampler
	stop      chan struct{}
	done      chan struct{}
}

// startLegSampler starts sampling every period; casPID 0 means the fake
// CAS runs in this process and is not sampled apart.
func startLegSampler(casPID int, every time.Duration) *legSampler {
	l := &legSampler{stop: make(chan struct{}), done: make(chan struct{})}
	if casPID > 0 {
		l.cas, _ = newProcSampler(casPID) // nil when it already exited
	}
	l.self, _ = newProcSampler(os.Getpid())
	go func() {
		defer close(l.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
				if l.cas != nil {
					l.cas.sample()
				}
				if l.self != nil {
					l.self.sample()
				}
			}
		}
	}()
	return l
}

// finish stops sampling and returns the figures over the leg (nil for a
// process that could not be read).
func (l *legSampler) finish() (cas, self *ProcReport) {
	close(l.stop)
	<-l.done
	if l.cas != nil {
		cas = l.cas.report()
	}
	if l.self != nil {
		self = l.self.report()
	}
	return cas, self
}
