// Package stack starts the real monitoring stack around checkpoint_exporter,
// as the end-to-end test and the demo use it: the exporter, Prometheus with
// the shipped rules, and Alertmanager with the shipped example route, wired
// together on free loopback ports with short timers.
package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/checkpoint-exporter/checkpoint_exporter/deps"
)

// Timers are the pipeline's intervals. The defaults are the end-to-end
// test's: seconds where production uses minutes.
type Timers struct {
	Scrape, Evaluation time.Duration
	// RuleTimeScale shrinks every `for` and range window of the shipped rules
	// (thresholds stay as shipped): 1m becomes 1m*RuleTimeScale.
	RuleTimeScale                            float64
	GroupWait, GroupInterval, RepeatInterval time.Duration
}

// DefaultTimers are the end-to-end test's timers.
var DefaultTimers = Timers{
	Scrape: time.Second, Evaluation: time.Second, RuleTimeScale: 1.0 / 60,
	GroupWait: time.Second, GroupInterval: 2 * time.Second, RepeatInterval: 5 * time.Second,
}

// Options describe one stack.
type Options struct {
	// WorkDir holds configs, data and logs.
	WorkDir string
	// Exporter is the checkpoint_exporter binary; RepoRoot has alerts/.
	Exporter, RepoRoot string
	// Prometheus and Alertmanager binaries (defaults: Debian's names).
	Prometheus, Alertmanager string
	// TargetConfig is the YAML of the exporter's single target, without name.
	TargetConfig string
	ScanInterval time.Duration
	Timers       Timers
	// ExtraExporterArgs are passed to the exporter.
	ExtraExporterArgs []string
}

// Stack is a running stack.
type Stack struct {
	ExporterURL, PrometheusURL, AlertmanagerURL string
	opts                                        Options
	procs                                       []*exec.Cmd
}

// FindBinary returns the path of the first of names found in PATH; the error
// names the Debian package of the first (deps/debian.txt).
func FindBinary(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", errors.New(deps.NotFound(names[0]))
}

// FreeAddr returns a free loopback address.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

var (
	forRe   = regexp.MustCompile(`(?m)^([ \t]*for:[ \t]*)(\d+)([smh])[ \t]*$`)
	rangeRe = regexp.MustCompile(`\[(\d+)([smh])\]`)
)

func scale(n, unit string, factor float64) string {
	v, _ := strconv.Atoi(n)
	d := time.Duration(v) * map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	ms := max(int64(float64(d.Milliseconds())*factor), 1000)
	return fmt.Sprintf("%dms", ms)
}

// ScaleRules shrinks the `for` and range windows of a rule file by factor
// (at least 1s each); thresholds are left alone.
func ScaleRules(rules []byte, factor float64) []byte {
	out := forRe.ReplaceAllFunc(rules, func(m []byte) []byte {
		sm := forRe.FindSubmatch(m)
		return []byte(string(sm[1]) + scale(string(sm[2]), string(sm[3]), factor))
	})
	return rangeRe.ReplaceAllFunc(out, func(m []byte) []byte {
		sm := rangeRe.FindSubmatch(m)
		return []byte("[" + scale(string(sm[1]), string(sm[2]), factor) + "]")
	})
}

// AlertmanagerConfig fills the shipped example in: the webhook URL, the
// token file and the pruner route's timers.
func AlertmanagerConfig(example []byte, webhookURL, tokenFile string, t Timers) ([]byte, error) {
	var c map[string]any
	if err := yaml.Unmarshal(example, &c); err != nil {
		return nil, err
	}
	route, _ := c["route"].(map[string]any)
	routes, _ := route["routes"].([]any)
	if len(routes) == 0 {
		return nil, errors.New("example has no sub-route for the pruner")
	}
	pr := routes[0].(map[string]any)
	pr["group_wait"] = t.GroupWait.String()
	pr["group_interval"] = t.GroupInterval.String()
	pr["repeat_interval"] = t.RepeatInterval.String()
	found := false
	for _, r := range c["receivers"].([]any) {
		rec := r.(map[string]any)
		if rec["name"] != pr["receiver"] {
			continue
		}
		wc := rec["webhook_configs"].([]any)[0].(map[string]any)
		wc["url"] = webhookURL
		wc["http_config"].(map[string]any)["authorization"].(map[string]any)["credentials_file"] = tokenFile
		found = true
	}
	if !found {
		return nil, fmt.Errorf("no receiver %v in the example", pr["receiver"])
	}
	return yaml.Marshal(c)
}

// Start writes the configs and starts exporter, Alertmanager and Prometheus,
// waiting until each answers. Stop must be called, also on error.
func Start(ctx context.Context, o Options) (*Stack, error) {
	s := &Stack{opts: o}
	var err error
	if o.Prometheus == "" {
		if o.Prometheus, err = FindBinary("prometheus"); err != nil {
			return s, err
		}
	}
	if o.Alertmanager == "" {
		if o.Alertmanager, err = FindBinary("prometheus-alertmanager", "alertmanager"); err != nil {
			return s, err
		}
	}
	if o.ScanInterval == 0 {
		o.ScanInterval = time.Second
	}
	if o.Timers == (Timers{}) {
		o.Timers = DefaultTimers
	}
	write := func(name string, data []byte) (string, error) {
		p := filepath.Join(o.WorkDir, name)
		return p, os.WriteFile(p, data, 0o600)
	}
	addrs := make([]string, 3)
	for i := range addrs {
		if addrs[i], err = FreeAddr(); err != nil {
			return s, err
		}
	}
	expAddr, promAddr, amAddr := addrs[0], addrs[1], addrs[2]
	s.ExporterURL, s.PrometheusURL, s.AlertmanagerURL = "http://"+expAddr, "http://"+promAddr, "http://"+amAddr

	token := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	tokenFile, err := write("webhook.token", []byte(token+"\n"))
	if err != nil {
		return s, err
	}
	expCfg := fmt.Sprintf("scan_interval: %s\ntargets:\n  - name: train\n%s", o.ScanInterval, indent(o.TargetConfig, "    "))
	expCfgFile, err := write("exporter.yml", []byte(expCfg))
	if err != nil {
		return s, err
	}
	rules, err := os.ReadFile(filepath.Join(o.RepoRoot, "alerts", "checkpoint_exporter.rules.yml"))
	if err != nil {
		return s, err
	}
	rulesFile, err := write("rules.yml", ScaleRules(rules, o.Timers.RuleTimeScale))
	if err != nil {
		return s, err
	}
	example, err := os.ReadFile(filepath.Join(o.RepoRoot, "alerts", "alertmanager.example.yml"))
	if err != nil {
		return s, err
	}
	amCfg, err := AlertmanagerConfig(example, s.ExporterURL+"/webhook", tokenFile, o.Timers)
	if err != nil {
		return s, err
	}
	amCfgFile, err := write("alertmanager.yml", amCfg)
	if err != nil {
		return s, err
	}
	promCfg := fmt.Sprintf(`global:
  scrape_interval: %s
  evaluation_interval: %s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs: [{targets: [%q]}]
scrape_configs:
  - job_name: checkpoint_exporter
    static_configs: [{targets: [%q]}]
`, o.Timers.Scrape, o.Timers.Evaluation, rulesFile, amAddr, expAddr)
	promCfgFile, err := write("prometheus.yml", []byte(promCfg))
	if err != nil {
		return s, err
	}

	expArgs := append([]string{"--config.file=" + expCfgFile, "--web.listen-address=" + expAddr,
		"--webhook.token-file=" + tokenFile, "--log.level=info"}, o.ExtraExporterArgs...)
	steps := []struct {
		name  string
		bin   string
		args  []string
		ready string
	}{
		{"exporter", o.Exporter, expArgs, s.ExporterURL + "/metrics"},
		{"alertmanager", o.Alertmanager, []string{"--config.file=" + amCfgFile, "--storage.path=" + filepath.Join(o.WorkDir, "am-data"),
			"--web.listen-address=" + amAddr, "--cluster.listen-address="}, s.AlertmanagerURL + "/-/ready"},
		{"prometheus", o.Prometheus, []string{"--config.file=" + promCfgFile, "--storage.tsdb.path=" + filepath.Join(o.WorkDir, "prom-data"),
			"--web.listen-address=" + promAddr, "--rules.alert.resend-delay=1s"}, s.PrometheusURL + "/-/ready"},
	}
	for _, st := range steps {
		logf, err := os.Create(filepath.Join(o.WorkDir, st.name+".log"))
		if err != nil {
			return s, err
		}
		cmd := exec.Command(st.bin, st.args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return s, fmt.Errorf("start %s: %w", st.name, err)
		}
		s.procs = append(s.procs, cmd)
		if err := waitReady(ctx, st.ready, 30*time.Second); err != nil {
			return s, fmt.Errorf("%s: %w (log: %s)", st.name, err, logf.Name())
		}
	}
	return s, nil
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func waitReady(ctx context.Context, u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s", u, timeout)
}

// Stop ends every process, newest first.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.Process.Kill()
			<-done
		}
	}
	s.procs = nil
}

// Sample is one series of a Prometheus instant query.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query against the stack's Prometheus.
func (s *Stack) Query(q string) ([]Sample, error) {
	resp, err := http.Get(s.PrometheusURL + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	if r.Data.ResultType == "scalar" {
		var v [2]any
		json.Unmarshal(r.Data.Result, &v)
		f, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
		return []Sample{{Value: f}}, nil
	}
	var vec []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	out := make([]Sample, len(vec))
	for i, v := range vec {
		f, _ := strconv.ParseFloat(fmt.Sprint(v.Value[1]), 64)
		out[i] = Sample{Metric: v.Metric, Value: f}
	}
	return out, nil
}

// Scrape returns the exporter's /metrics text.
func (s *Stack) Scrape() (string, error) {
	resp, err := http.Get(s.ExporterURL + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// MetricSum adds up the values of every series of name whose labels include
// all of want, in the exposition text.
func MetricSum(exposition, name string, want map[string]string) float64 {
	total := 0.0
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for k, v := range want {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", k, v)) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			total += v
		}
	}
	return total
}
