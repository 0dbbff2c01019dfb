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

// runProcs are the processes a run samples for RSS and CPU: the gateway
// (RunConfig.PID), the fake CAS when it runs as its own process
// (RunConfig.CASPID) and, when asked (RunConfig.SampleSelf), the load
// generator itself. Nil samplers are skipped.
type runProcs struct {
	gateway, cas, self *procSampler
}

func (p *runProcs) sample() {
	for _, s := range [...]*procSampler{p.gateway, p.cas, p.self} {
		if s != nil {
			s.sample()
		}
	}
}

// reportOf is s's report, nil for a process that was not sampled.
func reportOf(s *procSampler) *ProcReport {
	if s == nil {
		return nil
	}
	return s.report()
}
