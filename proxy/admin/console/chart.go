package console

import (
	"encoding/base64"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/easgate/easgate/policy"
)

// Charts are SVG drawn here: the template gets the geometry (rectangles,
// ticks, labels) and writes the elements; colours come from the
// stylesheet by class, so no inline style is needed (the CSP forbids it).

// Series is one data series of a bar chart.
type Series struct {
	Name, Class string
	Values      []int
}

// Chart is a drawn chart.
type Chart struct {
	Title  string
	Class  string // "hbar" for horizontal bars (drawn no wider than their text needs)
	W, H   int
	Bars   []Bar
	XTicks []Tick
	YTicks []Tick
	Legend []Series
	Total  int
	Table  [][]string // the data as a table, for screen readers and at zoom
	Head   []string
}

// Bar is one rectangle, with its tooltip.
type Bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
	LabelX     float64 // horizontal charts: the label and value positions
	LabelY     float64
	Label      string
	Value      string
	ValueX     float64
}

// Tick is an axis label; Line draws a grid line from X1,Y1 to X2,Y2.
type Tick struct {
	X, Y           float64
	Label          string
	X1, Y1, X2, Y2 float64
}

// niceMax rounds m up to 1, 2 or 5 times a power of ten (at least 1).
func niceMax(m int) int {
	if m <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(float64(m))))
	for _, f := range []float64{1, 2, 5, 10} {
		if float64(m) <= f*p {
			return int(f * p)
		}
	}
	return int(10 * p)
}

// barChart stacks series over labels; every labelEvery-th label is shown,
// counting back from the last (now).
func barChart(title string, labels []string, labelEvery int, series []Series) Chart {
	const w, h, left, right, top, bottom = 760, 230, 40, 8, 12, 34
	c := Chart{Title: title, W: w, H: h, Legend: series, Head: append([]string{"Period"}, names(series)...)}
	sums := make([]int, len(labels))
	for _, s := range series {
		for i, v := range s.Values {
			sums[i] += v
			c.Total += v
		}
	}
	top0 := 0
	for _, v := range sums {
		top0 = max(top0, v)
	}
	m := niceMax(top0)
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	slot := pw / float64(len(labels))
	for _, f := range []int{0, m / 2, m} {
		if f == m/2 && (m < 2 || m%2 != 0) {
			continue
		}
		y := float64(top) + ph - ph*float64(f)/float64(m)
		c.YTicks = append(c.YTicks, Tick{X: left - 6, Y: y + 4, Label: strconv.Itoa(f), X1: left, Y1: y, X2: w - right, Y2: y})
	}
	for i, l := range labels {
		x := float64(left) + slot*float64(i)
		base := float64(top) + ph
		row := []string{l}
		for _, s := range series {
			v := s.Values[i]
			row = append(row, strconv.Itoa(v))
			if v == 0 {
				continue
			}
			bh := ph * float64(v) / float64(m)
			base -= bh
			c.Bars = append(c.Bars, Bar{X: x + slot*0.15, Y: base, W: slot * 0.7, H: bh, Class: s.Class,
				Title: l + ": " + strconv.Itoa(v) + " " + s.Name})
		}
		if sums[i] > 0 {
			c.Table = append(c.Table, row)
		}
		if (len(labels)-1-i)%labelEvery == 0 {
			c.XTicks = append(c.XTicks, Tick{X: x + slot/2, Y: float64(h - bottom + 18), Label: l})
		}
	}
	return c
}

func names(series []Series) []string {
	out := make([]string, len(series))
	for i, s := range series {
		out[i] = s.Name
	}
	return out
}

// hbarChart draws the first n counts as horizontal bars.
func hbarChart(title string, counts []Count, n int) Chart {
	if len(counts) > n {
		counts = counts[:n]
	}
	const w, labelW, row, valueW = 520, 150, 26, 46
	c := Chart{Title: title, Class: "hbar", W: w, H: max(row*len(counts)+8, 40), Head: []string{"Client", "Devices"}}
	top := 0
	for _, k := range counts {
		top = max(top, k.N)
		c.Total += k.N
	}
	m := niceMax(top)
	pw := float64(w - labelW - valueW)
	for i, k := range counts {
		y := float64(4 + i*row)
		bw := pw * float64(k.N) / float64(m)
		c.Bars = append(c.Bars, Bar{X: labelW, Y: y + 4, W: math.Max(bw, 1), H: row - 10, Class: "s-count",
			Title: k.Label + ": " + strconv.Itoa(k.N), LabelX: labelW - 8, LabelY: y + row/2 + 3, Label: truncate(k.Label, 20),
			Value: strconv.Itoa(k.N), ValueX: labelW + math.Max(bw, 1) + 6})
		c.Table = append(c.Table, []string{k.Label, strconv.Itoa(k.N)})
	}
	return c
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func decodeToken(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t)
		switch {
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return strconv.Itoa(int(d/time.Minute)) + " min ago"
		case d < 48*time.Hour:
			return strconv.Itoa(int(d/time.Hour)) + " h ago"
		}
		return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
	},
	"devpath": devicePath,
	"devref":  func(user, id string) string { return pathEscape(user) + "/" + pathEscape(id) },
	"join":    strings.Join,
	"family":  familyName,
	"state": func(s string) string {
		switch s {
		case policy.DeviceAllowed, policy.DeviceBlocked, policy.DeviceQuarantined, policy.DeviceDiscovery:
			return s
		}
		return "unknown"
	},
	"f1":     func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"plural": plural,
	"sel":    func(a, b string) bool { return a == b },
}
