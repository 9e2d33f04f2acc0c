package helmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// rulesFile is alerts/checkpoint_exporter.rules.yml decoded strictly, with
// the prune threshold set to highWatermark ("85%"), as the chart must render
// it.
func rulesFile(t *testing.T, highWatermark string) monitoringv1.PrometheusRuleSpec {
	t.Helper()
	text := readRepoFile(t, "alerts/checkpoint_exporter.rules.yml")
	if n := strings.Count(text, ">= 0.85"); n != 1 {
		t.Fatalf("alerts/checkpoint_exporter.rules.yml has %d \">= 0.85\", want the one high-watermark threshold", n)
	}
	pct, err := strconv.ParseFloat(strings.TrimSuffix(highWatermark, "%"), 64)
	if err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, ">= 0.85", ">= "+strconv.FormatFloat(pct/100, 'g', -1, 64), 1)
	var spec monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict([]byte(text), &spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

// checkRule: the PrometheusRule is the rules file, group for group, rule for
// rule, with the threshold of config.prune.high_watermark.
func checkRule(t *testing.T, o objects, highWatermark string) {
	t.Helper()
	if len(o.rules) != 1 {
		t.Fatalf("%d PrometheusRules", len(o.rules))
	}
	r := o.rules[0]
	if r.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule labels %v", r.Labels)
	}
	if want := rulesFile(t, highWatermark); !reflect.DeepEqual(r.Spec, want) {
		got, _ := yaml.Marshal(r.Spec)
		exp, _ := yaml.Marshal(want)
		t.Errorf("PrometheusRule differs from the rules file (high watermark %s):\n--- got\n%s\n--- want\n%s", highWatermark, got, exp)
	}
}

// The threshold follows the exporter's config; a watermark the rule cannot
// express is refused.
func TestRuleThresholdFollowsConfig(t *testing.T) {
	for _, hw := range []string{"80%", "92.5%"} {
		t.Run(hw, func(t *testing.T) {
			manifest, err := template(t, values(t, "config: {prune: {high_watermark: \""+hw+"\", low_watermark: \"60%\"}}"))
			if err != nil {
				t.Fatal(err)
			}
			o := decode(t, manifest)
			checkRule(t, o, hw)
			if !strings.Contains(o.configMaps[releaseName].Data["config.yml"], "high_watermark: "+hw) {
				t.Errorf("config does not carry high_watermark %s:\n%s", hw, o.configMaps[releaseName].Data["config.yml"])
			}
		})
	}
}

// The rules the chart ships pass the repository's promtool unit tests
// (alerts/checkpoint_exporter.rules_test.yml) once extracted.
func TestRuleUnitTestsPassOnChartRules(t *testing.T) {
	promtool := testenv.Need(t, "promtool")
	manifest, err := template(t, values(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, manifest)
	if len(o.rules) != 1 {
		t.Fatalf("%d PrometheusRules", len(o.rules))
	}
	rules, err := yaml.Marshal(o.rules[0].Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "checkpoint_exporter.rules.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := readRepoFile(t, "alerts/checkpoint_exporter.rules_test.yml")
	if err := os.WriteFile(filepath.Join(dir, "checkpoint_exporter.rules_test.yml"), []byte(tests), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", "checkpoint_exporter.rules.yml"},
		{"test", "rules", "checkpoint_exporter.rules_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s\nrules:\n%s", strings.Join(args, " "), err, out, rules)
		}
	}
}
