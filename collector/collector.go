// Package collector exports the inventory's latest checkpoint snapshots as
// Prometheus metrics. Collect builds const metrics from snapshots the
// background scanners already made, so a scrape never touches the filesystem
// and a target that is gone leaves no stale series behind.
//
// It imports checkpoint only (and internal/dirfs for its process
// metrics): it must not import pruner, which reports its own metrics.
package collector

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Snapshots is what the collector needs from the inventory.
type Snapshots interface {
	Snapshots() []*checkpoint.Snapshot
}

const cached = " (from the last background scan)"

var (
	targetLabels = []string{"target"}
	fsLabels     = []string{"target", "mountpoint", "device", "fstype"}
)

func desc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(name, help+cached+".", labels, nil)
}

// Collector is a prometheus.Collector over an inventory. A target's metrics
// change only when a new scan replaces its snapshot, so they are built once
// per snapshot and the same immutable const metrics are sent to every scrape
// until then.
type Collector struct {
	src Snapshots

	mu       sync.Mutex // guards rendered
	rendered map[*checkpoint.Snapshot][]prometheus.Metric

	up, info, checkpoints, incomplete, torn, bytes    *prometheus.Desc
	uncertain                                         *prometheus.Desc
	latestStep, latestBytes, latestTime, oldestStep   *prometheus.Desc
	saveInterval, savesUntilFull, maxBytes            *prometheus.Desc
	fsAvail, fsSize, fsFiles, fsFilesFree, fsReadonly *prometheus.Desc
	scanDuration, scanTime, scanErrors, walkerFailed  *prometheus.Desc
}

// New returns a collector reading snapshots from src.
func New(src Snapshots) *Collector {
	return &Collector{
		src:            src,
		up:             desc("checkpoint_dir_up", "1 if the last scan of the target directory succeeded, 0 if it failed (missing directory, permission, hung filesystem)", targetLabels),
		info:           desc("checkpoint_dir_info", "Always 1; the target's path, the layout that recognised its checkpoints and the name series it chose", []string{"target", "path", "layout", "series"}),
		checkpoints:    desc("checkpoint_dir_checkpoints", "Number of complete checkpoints in the target directory", targetLabels),
		incomplete:     desc("checkpoint_dir_incomplete_checkpoints", "Number of checkpoints still being written or left unfinished", targetLabels),
		torn:           desc("checkpoint_dir_torn_checkpoints", "Number of saves cut short (a file shorter than its own header says, an end record missing), not counted as checkpoints", targetLabels),
		uncertain:      desc("checkpoint_dir_uncertain_checkpoints", "Number of complete checkpoints counted in checkpoint_dir_checkpoints but never pruned because layout detection is not sure of them (no rule names the layout, or rules disagree); `checkpoint_exporter scan` prints the pattern: that settles it", targetLabels),
		bytes:          desc("checkpoint_dir_bytes", "Disk usage in bytes of all checkpoints of the target (st_blocks*512, hard links once)", targetLabels),
		latestStep:     desc("checkpoint_dir_latest_step", "Step of the newest complete checkpoint", targetLabels),
		latestBytes:    desc("checkpoint_dir_latest_bytes", "Disk usage in bytes of the newest complete checkpoint", targetLabels),
		latestTime:     desc("checkpoint_dir_latest_timestamp_seconds", "Modification time of the newest complete checkpoint, in seconds since the epoch", targetLabels),
		oldestStep:     desc("checkpoint_dir_oldest_step", "Step of the oldest complete checkpoint", targetLabels),
		saveInterval:   desc("checkpoint_dir_save_interval_seconds", "Median time between the most recent saves; absent with fewer than two complete checkpoints", targetLabels),
		maxBytes:       desc("checkpoint_dir_max_bytes", "The target's max_bytes: the disk usage its checkpoints are pruned down to; absent when not configured", targetLabels),
		savesUntilFull: desc("checkpoint_dir_saves_until_full", "How many more checkpoints of the newest one's size fit in the filesystem's available space", targetLabels),
		fsAvail:        desc("checkpoint_filesystem_avail_bytes", "Filesystem space available to unprivileged users (f_bavail*f_frsize)", fsLabels),
		fsSize:         desc("checkpoint_filesystem_size_bytes", "Filesystem size (f_blocks*f_frsize)", fsLabels),
		fsFiles:        desc("checkpoint_filesystem_files", "Filesystem inodes in total; absent where the filesystem does no inode accounting (none or all free, or a billion with none free: rclone, s3fs)", fsLabels),
		fsFilesFree:    desc("checkpoint_filesystem_files_free", "Filesystem inodes free; absent where the filesystem does no inode accounting", fsLabels),
		fsReadonly:     desc("checkpoint_filesystem_readonly", "1 if the filesystem is mounted read-only", fsLabels),
		scanDuration:   desc("checkpoint_scan_duration_seconds", "Duration of the last scan of the target", targetLabels),
		scanTime:       desc("checkpoint_scan_timestamp_seconds", "When the last scan of the target finished, in seconds since the epoch", targetLabels),
		scanErrors:     desc("checkpoint_scan_errors_total", "Entries under the target that could not be read, over all scans since start", targetLabels),
		walkerFailed:   desc("checkpoint_scan_walker_failures_total", "Background scans whose idle-priority walker process failed, or said nothing while the filesystem answered (stopped, frozen) and was killed, and that were finished by the exporter at normal priority, since start", targetLabels),
	}
}

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.up, c.info, c.checkpoints, c.incomplete, c.torn, c.uncertain, c.bytes, c.latestStep, c.latestBytes, c.latestTime,
		c.oldestStep, c.saveInterval, c.savesUntilFull, c.maxBytes, c.fsAvail, c.fsSize, c.fsFiles, c.fsFilesFree,
		c.fsReadonly, c.scanDuration, c.scanTime, c.scanErrors, c.walkerFailed,
	} {
		ch <- d
	}
}

// Collect sends the metrics of every target's latest snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snaps := c.src.Snapshots()
	next := c.renderAll(snaps)
	for _, s := range snaps {
		for _, m := range next[s] {
			ch <- m
		}
	}
}

// renderAll returns the metrics of snaps, rendering those not seen before.
// Only the current snapshots stay: a rescanned or removed target's old
// metrics are dropped here. The deferred unlock keeps a panic in one render
// from wedging every later scrape.
func (c *Collector) renderAll(snaps []*checkpoint.Snapshot) map[*checkpoint.Snapshot][]prometheus.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[*checkpoint.Snapshot][]prometheus.Metric, len(snaps))
	for _, s := range snaps {
		ms, ok := c.rendered[s]
		if !ok {
			ms = c.render(s)
		}
		next[s] = ms
	}
	c.rendered = next
	return next
}

// render builds the metrics of one snapshot. Snapshots are never modified
// once stored, so the result is valid for as long as s is the latest.
func (c *Collector) render(s *checkpoint.Snapshot) []prometheus.Metric {
	var ms []prometheus.Metric
	c.collect(func(m prometheus.Metric) { ms = append(ms, m) }, s)
	return ms
}

func (c *Collector) collect(emit func(prometheus.Metric), s *checkpoint.Snapshot) {
	name := labelValue(s.Target.Name)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		for i := range labels {
			labels[i] = labelValue(labels[i])
		}
		emit(prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...))
	}
	up := 0.0
	if s.Up() {
		up = 1
	}
	gauge(c.up, up)
	if s.Target.MaxBytes > 0 {
		gauge(c.maxBytes, float64(s.Target.MaxBytes))
	}
	gauge(c.scanDuration, s.Duration.Seconds())
	gauge(c.scanTime, float64(s.Time.UnixNano())/1e9)
	emit(prometheus.MustNewConstMetric(c.scanErrors, prometheus.CounterValue, float64(s.ErrorsTotal), name))
	emit(prometheus.MustNewConstMetric(c.walkerFailed, prometheus.CounterValue, float64(s.WalkerFailuresTotal), name))

	if fs := s.FS; fs != nil {
		l := []string{fs.Mountpoint, fs.Device, fs.FSType}
		gauge(c.fsAvail, float64(fs.AvailBytes), l...)
		gauge(c.fsSize, float64(fs.SizeBytes), l...)
		// A filesystem without inode accounting reports made-up figures
		// (rclone: a billion, none free): not exported, so no inode alert
		// fires for a filesystem that cannot run out of inodes.
		if fs.InodesAccounted() {
			gauge(c.fsFiles, float64(fs.Files), l...)
			gauge(c.fsFilesFree, float64(fs.FilesFree), l...)
		}
		ro := 0.0
		if fs.ReadOnly {
			ro = 1
		}
		gauge(c.fsReadonly, ro, l...)
	}
	if !s.Up() {
		return
	}

	gauge(c.info, 1, s.Target.Path, s.Layout, s.Series)
	complete := s.Complete()
	incomplete, uncertain := 0, 0
	for _, c := range s.Checkpoints {
		if c.Incomplete {
			incomplete++
		}
	}
	for _, c := range complete {
		if c.Uncertain != "" {
			uncertain++
		}
	}
	gauge(c.checkpoints, float64(len(complete)))
	gauge(c.incomplete, float64(incomplete))
	gauge(c.uncertain, float64(uncertain))
	gauge(c.torn, float64(len(s.Torn())))
	gauge(c.bytes, float64(s.Bytes()))
	latest := s.Latest()
	if latest == nil {
		return
	}
	// A time in the names orders the checkpoints but is no step: no step
	// series then (checkpoint.Checkpoint.NoStep).
	if !latest.NoStep {
		gauge(c.latestStep, float64(latest.Step))
	}
	gauge(c.latestBytes, float64(latest.Bytes))
	gauge(c.latestTime, float64(latest.ModTime.UnixNano())/1e9)
	if !complete[0].NoStep {
		gauge(c.oldestStep, float64(complete[0].Step))
	}
	if iv, ok := s.SaveInterval(); ok {
		gauge(c.saveInterval, iv.Seconds())
	}
	if s.FS != nil && latest.Bytes > 0 {
		gauge(c.savesUntilFull, float64(s.FS.AvailBytes/uint64(latest.Bytes)))
	}
}

// labelValue makes s a valid label value. Directory, series and mount point
// names are bytes, not text: one in another encoding would make the client
// library refuse the metric and fail the whole scrape, so invalid bytes are
// replaced with U+FFFD.
func labelValue(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}
