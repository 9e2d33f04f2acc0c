package statuspage

import (
	"fmt"
	"strings"
	"time"
)

// bar is the filesystem bar: shares of the filesystem as percentages of
// the bar's width (SVG attributes, so no inline style is needed).
type bar struct {
	Show bool
	// Used, Checkpoints: filled widths; High, Low: where the watermarks
	// stand.
	Used, Checkpoints, High, Low string
	// MaxBytes: the checkpoints' share of max_bytes, when set.
	MaxShow                 bool
	MaxUsed                 string
	MaxOver                 bool
	HighReached, LowReached bool
}

func share(part, whole float64) string {
	if whole <= 0 {
		return "0%"
	}
	return fmt.Sprintf("%.2f%%", 100*min(max(part/whole, 0), 1))
}

func makeBar(t Target) bar {
	fs := t.Filesystem
	if fs == nil || fs.SizeBytes == 0 {
		return bar{}
	}
	size := float64(fs.SizeBytes)
	b := bar{Show: true, Used: share(float64(fs.UsedBytes), size), Checkpoints: share(float64(t.CheckpointBytes), size),
		High: share(float64(fs.HighUsedBytes), size), Low: share(float64(fs.LowUsedBytes), size),
		HighReached: fs.HighReached, LowReached: fs.UsedBytes > fs.LowUsedBytes}
	if m := t.Policy.MaxBytes; m > 0 {
		b.MaxShow, b.MaxUsed, b.MaxOver = true, share(float64(t.CheckpointBytes), float64(m)), uint64(max(t.CheckpointBytes, 0)) > m
	}
	return b
}

// chart is the 24-hour usage chart, drawn in SVG user units: used share of
// the filesystem (line) and the checkpoints' share (area), with the
// watermarks.
type chart struct {
	Show           bool
	W, H           int
	Left, Bottom   int
	Used, Ckpt     string // polyline points, polygon points
	HighY, LowY    string // "" when unset
	XTicks, YTicks []tick
}

type tick struct {
	X, Y  string
	Label string
}

const (
	chartW, chartH   = 720, 180
	chartL, chartB   = 44, 22 // room for the axes' labels
	chartT, chartR   = 8, 8
	chartMinSamples  = 2
	chartTickHours   = 6
	chartPlotW       = chartW - chartL - chartR
	chartPlotH       = chartH - chartB - chartT
	chartPlotBottomY = chartT + chartPlotH
)

func makeChart(t Target, now time.Time) chart {
	c := chart{W: chartW, H: chartH, Left: chartL, Bottom: chartPlotBottomY}
	if len(t.Usage) < chartMinSamples {
		return c
	}
	c.Show = true
	start := now.Add(-chartWindow)
	x := func(at time.Time) float64 {
		return chartL + chartPlotW*min(max(at.Sub(start).Seconds()/chartWindow.Seconds(), 0), 1)
	}
	y := func(ratio float64) float64 { return chartT + chartPlotH*(1-min(max(ratio, 0), 1)) }
	var used, ck strings.Builder
	fmt.Fprintf(&ck, "%.1f,%d ", x(t.Usage[0].Time), chartPlotBottomY)
	for _, s := range t.Usage {
		if s.SizeBytes == 0 {
			continue
		}
		size := float64(s.SizeBytes)
		fmt.Fprintf(&used, "%.1f,%.1f ", x(s.Time), y(float64(s.UsedBytes)/size))
		fmt.Fprintf(&ck, "%.1f,%.1f ", x(s.Time), y(float64(s.CheckpointBytes)/size))
	}
	fmt.Fprintf(&ck, "%.1f,%d", x(t.Usage[len(t.Usage)-1].Time), chartPlotBottomY)
	c.Used, c.Ckpt = strings.TrimSpace(used.String()), ck.String()
	if fs := t.Filesystem; fs != nil && fs.SizeBytes > 0 {
		if fs.HighUsedBytes > 0 {
			c.HighY = fmt.Sprintf("%.1f", y(float64(fs.HighUsedBytes)/float64(fs.SizeBytes)))
		}
		if fs.LowUsedBytes > 0 {
			c.LowY = fmt.Sprintf("%.1f", y(float64(fs.LowUsedBytes)/float64(fs.SizeBytes)))
		}
	}
	for _, r := range []float64{0, 0.5, 1} {
		c.YTicks = append(c.YTicks, tick{X: fmt.Sprint(chartL - 4), Y: fmt.Sprintf("%.1f", y(r)+4), Label: fmt.Sprintf("%.0f%%", 100*r)})
	}
	// Ticks on the hour, every few hours, labelled with the hour.
	first := start.Truncate(time.Hour).Add(time.Hour)
	for at := first; !at.After(now); at = at.Add(time.Hour) {
		if at.Hour()%chartTickHours != 0 {
			continue
		}
		c.XTicks = append(c.XTicks, tick{X: fmt.Sprintf("%.1f", x(at)), Y: fmt.Sprint(chartH - 6), Label: at.Format("15:04")})
	}
	return c
}
