package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/checkpoint-exporter/checkpoint_exporter/dashboards"
)

var metricName = regexp.MustCompile(`\bcheckpoint_[a-z_]+\b`)

// ruleExprs returns the expressions of a Prometheus rule file.
func ruleExprs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

// Every metric the rules and the dashboard query is one the real binary
// exposes.
func TestRulesAndDashboardUseExportedMetrics(t *testing.T) {
	dir := seedTree(t)
	cfg := filepath.Join(t.TempDir(), "c.yml")
	// max_bytes and offload set, so that their metrics are exposed too.
	if err := os.WriteFile(cfg, []byte("targets:\n  - name: models\n    path: "+dir+"\n    max_bytes: 1TiB\n    offload: {require_marker: .synced}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, "--config.file="+cfg)
	body := scrapeUntil(t, base+"/metrics", `checkpoint_dir_saves_until_full{target="models"}`)
	exposed := map[string]bool{}
	// Names of families and of samples (a histogram's _bucket, _sum, _count).
	for _, m := range regexp.MustCompile(`(?m)^(?:# TYPE )?(checkpoint_[a-z_]+)[ {]`).FindAllStringSubmatch(body, -1) {
		exposed[m[1]] = true
	}
	root := filepath.Join("..", "..")
	dash, err := os.ReadFile(filepath.Join(root, "dashboards", dashboards.File))
	if err != nil {
		t.Fatal(err)
	}
	queries, err := dashboards.Queries(dash)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][]string{
		"alerts/checkpoint_exporter.rules.yml": ruleExprs(t, filepath.Join(root, "alerts", "checkpoint_exporter.rules.yml")),
		"dashboards/" + dashboards.File:        queries,
	}
	for src, exprs := range sources {
		if len(exprs) == 0 {
			t.Errorf("%s: no expressions found", src)
		}
		used := map[string]bool{}
		for _, e := range exprs {
			for _, name := range metricName.FindAllString(e, -1) {
				used[name] = true
			}
		}
		var missing []string
		for name := range used {
			if !exposed[name] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s uses metrics the exporter does not expose: %v", src, missing)
		}
	}
}
