package collector

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// ProcessCollector exports the process_* metrics of client_golang's process
// collector (the same names, help, types and values, which node_exporter and
// every other exporter serve by default) at a fraction of its cost per
// scrape: the start time is read once, the limits come from getrlimit instead
// of parsing /proc/self/limits, /proc/stat is not re-read on every scrape for
// the boot time, and the /proc files it does read go through one reused
// buffer. Measured in BENCHMARKS.md ("Beside a training job").
type ProcessCollector struct {
	start    float64 // process_start_time_seconds
	startErr error   // why start could not be read

	mu  sync.Mutex // guards buf
	buf []byte

	cpu, openFDs, maxFDs, vsize, maxVsize, rss, startTime, inBytes, outBytes *prometheus.Desc
}

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ is 100 on
// every Linux architecture Go supports.
const userHZ = 100

// NewProcessCollector returns the collector of this process's own metrics.
func NewProcessCollector() *ProcessCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	c := &ProcessCollector{
		buf:       make([]byte, dirfs.BufSize),
		cpu:       d("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."),
		openFDs:   d("process_open_fds", "Number of open file descriptors."),
		maxFDs:    d("process_max_fds", "Maximum number of open file descriptors."),
		vsize:     d("process_virtual_memory_bytes", "Virtual memory size in bytes."),
		maxVsize:  d("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes."),
		rss:       d("process_resident_memory_bytes", "Resident memory size in bytes."),
		startTime: d("process_start_time_seconds", "Start time of the process since unix epoch in seconds."),
		inBytes:   d("process_network_receive_bytes_total", "Number of bytes received by the process over the network."),
		outBytes:  d("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network."),
	}
	c.start, c.startErr = c.readStartTime()
	return c
}

// Describe implements prometheus.Collector.
func (c *ProcessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.openFDs, c.maxFDs, c.vsize, c.maxVsize, c.rss, c.startTime, c.inBytes, c.outBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Like client_golang's collector
// with its default options, a value that cannot be read is left out.
//
// Every file is read before the first metric is sent: a registry gathers
// each collector in a goroutine of its own, and a metric sent while the
// receiving goroutine sleeps wakes it on another processor; sends spread
// between system calls paid that wake-up once per metric.
func (c *ProcessCollector) Collect(ch chan<- prometheus.Metric) {
	ms := make([]prometheus.Metric, 0, 9)
	add := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
		ms = append(ms, prometheus.MustNewConstMetric(d, t, v))
	}
	c.mu.Lock()
	if st, err := c.readStat(); err == nil {
		add(c.cpu, prometheus.CounterValue, float64(st.utime+st.stime)/userHZ)
		add(c.vsize, prometheus.GaugeValue, float64(st.vsize))
		add(c.rss, prometheus.GaugeValue, float64(st.rss)*float64(os.Getpagesize()))
	}
	if c.startErr == nil {
		add(c.startTime, prometheus.GaugeValue, c.start)
	}
	if n, err := c.countFDs(); err == nil {
		add(c.openFDs, prometheus.GaugeValue, float64(n))
	}
	var nofile, as unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile) == nil && unix.Getrlimit(unix.RLIMIT_AS, &as) == nil {
		add(c.maxFDs, prometheus.GaugeValue, float64(nofile.Cur))
		add(c.maxVsize, prometheus.GaugeValue, float64(as.Cur))
	}
	if in, out, err := c.readNetstat(); err == nil {
		add(c.inBytes, prometheus.CounterValue, in)
		add(c.outBytes, prometheus.CounterValue, out)
	}
	c.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
}

// readFile reads a small /proc file into c.buf; the result aliases it.
func (c *ProcessCollector) readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	n := 0
	for n < len(c.buf) {
		m, err := unix.Read(fd, c.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return c.buf[:n], nil
}

type procStat struct {
	utime, stime, starttime, vsize, rss uint64
}

// readStat parses /proc/self/stat (proc(5)): the fields after the command
// name, which is in parentheses and may itself hold spaces and parentheses.
func (c *ProcessCollector) readStat() (procStat, error) {
	b, err := c.readFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/self/stat: no command name in %q", b)
	}
	// Field 3 (state) is the first after ") "; we want 14, 15, 22, 23, 24.
	var st procStat
	field := 3
	for _, f := range bytes.Fields(b[i+1:]) {
		var p *uint64
		switch field {
		case 14:
			p = &st.utime
		case 15:
			p = &st.stime
		case 22:
			p = &st.starttime
		case 23:
			p = &st.vsize
		case 24:
			p = &st.rss
		}
		if p != nil {
			v, err := strconv.ParseUint(string(f), 10, 64)
			if err != nil {
				return procStat{}, fmt.Errorf("/proc/self/stat field %d: %w", field, err)
			}
			*p = v
		}
		field++
	}
	if field <= 24 {
		return procStat{}, fmt.Errorf("/proc/self/stat: %d fields, want at least 24", field-1)
	}
	return st, nil
}

// readStartTime is the process start time since the epoch: its start in
// clock ticks after boot (/proc/self/stat) plus the boot time (/proc/stat).
// Both are fixed for the life of the process, so it is read once.
func (c *ProcessCollector) readStartTime() (float64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.readStat()
	if err != nil {
		return 0, err
	}
	b, err := c.readFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			boot, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat btime: %w", err)
			}
			return float64(boot) + float64(st.starttime)/userHZ, nil
		}
	}
	return 0, fmt.Errorf("/proc/stat: no btime line")
}

// countFDs counts the entries of /proc/self/fd (including the one it opens
// to do so, as client_golang's collector does).
func (c *ProcessCollector) countFDs() (int, error) {
	fd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open /proc/self/fd: %w", err)
	}
	defer unix.Close(fd)
	n := 0
	err = dirfs.ReadDirents(fd, c.buf, func([]byte, byte) bool { n++; return true })
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/fd: %w", err)
	}
	return n, nil
}

// readNetstat returns InOctets and OutOctets of the IpExt table of
// /proc/self/net/netstat: a header line of names, then a line of values.
// Counters the kernel does not report are 0, as in client_golang.
func (c *ProcessCollector) readNetstat() (in, out float64, err error) {
	b, err := c.readFile("/proc/self/net/netstat")
	if err != nil {
		return 0, 0, err
	}
	return parseNetstat(b)
}

func parseNetstat(b []byte) (in, out float64, err error) {
	prefix := []byte("IpExt:")
	var names [][]byte
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		if names == nil {
			names = bytes.Fields(rest)
			continue
		}
		for i, v := range bytes.Fields(rest) {
			if i >= len(names) {
				break
			}
			var dst *float64
			switch string(names[i]) {
			case "InOctets":
				dst = &in
			case "OutOctets":
				dst = &out
			default:
				continue
			}
			x, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/self/net/netstat IpExt %s: %w", names[i], err)
			}
			*dst = x
		}
		return in, out, nil
	}
	return 0, 0, nil
}
