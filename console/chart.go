package console

import (
	"math"
	"strconv"
	"strings"
)

// chart is a bar chart laid out on the server, drawn by the reports
// template as inline SVG: no script and no library draws it, so it shows
// as soon as the page does and the refresh only swaps markup. Colours
// come from classes (the console's CSP allows no inline style).
type chart struct {
	ID, Title string
	// Desc is the chart's text alternative, read with its title; the
	// table beside it holds every figure.
	Desc                     string
	W, H                     int
	Left, Right, Top, Bottom float64 // the plot area
	Legend                   []legendItem
	YTicks, XLabels          []axisLabel
	Bars                     []bar
	Rotate                   bool // long category names are drawn slanted
}

type legendItem struct {
	X           float64
	Name, Class string
}

type axisLabel struct {
	X, Y  float64
	Label string
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Tip        string // the bar's own <title>: its category, series and value
}

// series is one kind of bar in each category.
type series struct{ Name, Class string }

const (
	chartW = 760
	chartH = 280
)

// barChart lays out values[category][series] as grouped bars with a y axis
// starting at 0. At most about a dozen category names are written under
// the axis; every bar keeps its own tooltip.
func barChart(id, title, desc string, cats []string, ss []series, values [][]int64, rotate bool) chart {
	c := chart{ID: id, Title: title, Desc: desc, W: chartW, H: chartH, Left: 64, Right: chartW - 12, Top: 46, Bottom: chartH - 30, Rotate: rotate}
	if rotate {
		c.Bottom = chartH - 62
	}
	x := c.Left
	for _, s := range ss {
		c.Legend = append(c.Legend, legendItem{X: x, Name: s.Name, Class: s.Class})
		x += 24 + float64(len(s.Name))*7.5
	}
	var highest int64
	for _, row := range values {
		for _, v := range row {
			highest = max(highest, v)
		}
	}
	step := niceStep(highest)
	top := step * max(1, (highest+step-1)/step)
	scale := (c.Bottom - c.Top) / float64(top)
	for v := int64(0); v <= top; v += step {
		c.YTicks = append(c.YTicks, axisLabel{X: c.Left - 6, Y: c.Bottom - float64(v)*scale, Label: thousands(v)})
	}
	if len(cats) == 0 {
		return c
	}
	group := (c.Right - c.Left) / float64(len(cats))
	// Few categories would make slabs of bars: a bar is at most 36 wide,
	// its group centred.
	width := min(group*0.8/float64(len(ss)), 36)
	pad := (group - width*float64(len(ss))) / 2
	every := (len(cats) + 11) / 12
	for i, cat := range cats {
		g := c.Left + float64(i)*group
		for j, s := range ss {
			v := values[i][j]
			h := float64(v) * scale
			c.Bars = append(c.Bars, bar{X: g + pad + float64(j)*width, Y: c.Bottom - h, W: width, H: h,
				Class: s.Class, Tip: cat + ", " + s.Name + ": " + thousands(v)})
		}
		if i%every == 0 {
			c.XLabels = append(c.XLabels, axisLabel{X: g + group/2, Y: c.Bottom + 16, Label: shorten(cat, 14)})
		}
	}
	return c
}

// niceStep is the step of about four y ticks up to highest: 1, 2 or 5
// times a power of ten.
func niceStep(highest int64) int64 {
	if highest <= 4 {
		return 1
	}
	raw := float64(highest) / 4
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return int64(m * p)
		}
	}
	return int64(10 * p)
}

// thousands writes n with commas: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
