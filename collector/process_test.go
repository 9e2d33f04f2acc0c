package collector

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// gatherOne gathers c alone and returns its families by name.
func gatherOne(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func value(mf *dto.MetricFamily) float64 {
	m := mf.GetMetric()[0]
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// The process collector serves what client_golang's does: the same families
// (names, help, types) and the same values. Values that only grow are read
// ours, theirs, ours and must be in order; the others must agree.
func TestProcessCollectorMatchesClientGolang(t *testing.T) {
	// Some loopback traffic, so the network counters are not all zero.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, 1<<16)) }))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	ours := NewProcessCollector()
	before := gatherOne(t, ours)
	theirs := gatherOne(t, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	after := gatherOne(t, ours)

	if len(before) != len(theirs) {
		t.Errorf("families: ours %d, client_golang %d", len(before), len(theirs))
	}
	for name, want := range theirs {
		got, ok := before[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if got.GetHelp() != want.GetHelp() || got.GetType() != want.GetType() {
			t.Errorf("%s: help %q type %v, client_golang %q %v", name, got.GetHelp(), got.GetType(), want.GetHelp(), want.GetType())
		}
		lo, mid, hi := value(got), value(want), value(after[name])
		switch name {
		case "process_cpu_seconds_total", "process_network_receive_bytes_total", "process_network_transmit_bytes_total":
			if !(lo <= mid && mid <= hi) {
				t.Errorf("%s: ours %v, client_golang %v, ours again %v: not in order", name, lo, mid, hi)
			}
			if name == "process_network_receive_bytes_total" && mid == 0 {
				t.Errorf("%s: 0 after loopback traffic", name)
			}
		case "process_max_fds", "process_virtual_memory_max_bytes":
			if lo != mid {
				t.Errorf("%s: ours %v, client_golang %v", name, lo, mid)
			}
		case "process_start_time_seconds":
			if math.Abs(lo-mid) > 1 {
				t.Errorf("%s: ours %v, client_golang %v", name, lo, mid)
			}
		case "process_open_fds":
			if math.Abs(lo-mid) > 2 {
				t.Errorf("%s: ours %v, client_golang %v", name, lo, mid)
			}
		case "process_virtual_memory_bytes", "process_resident_memory_bytes":
			if lo <= 0 || math.Abs(lo-mid) > 0.2*mid {
				t.Errorf("%s: ours %v, client_golang %v", name, lo, mid)
			}
		default:
			t.Errorf("%s: no check for this family", name)
		}
	}
	if problems, err := testutil.CollectAndLint(ours); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// Open file descriptors are counted at every scrape, not once.
func TestProcessCollectorCountsOpenFDs(t *testing.T) {
	c := NewProcessCollector()
	fds := func() float64 { return value(gatherOne(t, c)["process_open_fds"]) }
	n0 := fds()
	const more = 20
	for range more {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	if n1 := fds(); n1 != n0+more {
		t.Errorf("open fds %v after opening %d more, was %v", n1, more, n0)
	}
}

func TestParseStat(t *testing.T) {
	// Fields 3..52 of a real line; the command name holds ") (" and spaces.
	tail := " S 1 2 3 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 12345 1253376000 2048 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	for _, tc := range []struct {
		name, line string
		want       procStat
		err        bool
	}{
		{"plain", "4242 (checkpoint_expo)" + tail, procStat{utime: 250, stime: 75, starttime: 12345, vsize: 1253376000, rss: 2048}, false},
		{"odd command", "4242 (a) (b c)" + tail, procStat{utime: 250, stime: 75, starttime: 12345, vsize: 1253376000, rss: 2048}, false},
		{"no parenthesis", "4242 x S 1", procStat{}, true},
		{"short", "4242 (x) S 1 2 3", procStat{}, true},
		{"not a number", "4242 (x) S 1 2 3 0 -1 4194560 100 0 0 0 x 75 0 0 20 0 9 0 12345 1 2", procStat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("parseStat = %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParseNetstat(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		in, out    float64
		err        bool
	}{
		{"real", "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\nIpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets\nIpExt: 0 0 0 0 0 0 123456 654321\nMPTcpExt: MPCapableSYNRX\nMPTcpExt: 0\n", 123456, 654321, false},
		{"no IpExt", "TcpExt: A\nTcpExt: 1\n", 0, 0, false},
		{"no octets", "IpExt: InNoRoutes\nIpExt: 7\n", 0, 0, false},
		{"garbled", "IpExt: InOctets OutOctets\nIpExt: 12 x\n", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out, err := parseNetstat([]byte(tc.text))
			if (err != nil) != tc.err || in != tc.in || out != tc.out {
				t.Errorf("parseNetstat = %v, %v, %v; want %v, %v, error %v", in, out, err, tc.in, tc.out, tc.err)
			}
		})
	}
}

// BenchmarkProcessCollector compares one scrape of the process metrics with
// client_golang's collector.
func BenchmarkProcessCollector(b *testing.B) {
	for _, bc := range []struct {
		name string
		c    prometheus.Collector
	}{
		{"ours", NewProcessCollector()},
		{"client_golang", collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ch := make(chan prometheus.Metric, 16)
			b.ReportAllocs()
			for b.Loop() {
				bc.c.Collect(ch)
				for len(ch) > 0 {
					<-ch
				}
			}
		})
	}
}
