// Package helmtest checks the Helm chart in deploy/helm/checkpoint-exporter
// without a cluster: Helm's own lint and template code (helm.sh/helm/v3 at
// the version go.mod pins, the code behind `helm lint` and `helm template`)
// renders a matrix of values, and every rendered object is decoded strictly
// into its typed API struct (k8s.io/api, prometheus-operator's
// pkg/apis/monitoring): a field the API does not know is an error.
//
// It is its own Go module so that Helm and the Kubernetes libraries stay out
// of the exporter's go.mod.
package helmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../checkpoint-exporter"
	repoRoot    = "../../.."
	releaseName = "checkpoint-exporter"
	namespace   = "monitoring"
)

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// values parses a values file's text as Helm does.
func values(t *testing.T, text string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(text))
	if err != nil {
		t.Fatalf("values %q: %v", text, err)
	}
	return v.AsMap()
}

// template is `helm template checkpoint-exporter <chart> --namespace
// monitoring -f values`: the manifest text.
func template(t *testing.T, vals map[string]any) (string, error) {
	t.Helper()
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	rel, err := install.Run(loadChart(t), vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// lint is `helm lint --strict <chart> -f values`.
func lint(t *testing.T, vals map[string]any) {
	t.Helper()
	l := action.NewLint()
	l.Strict = true
	l.Namespace = namespace
	res := l.Run([]string{chartDir}, vals)
	for _, m := range res.Messages {
		t.Logf("lint: %s", m)
	}
	for _, err := range res.Errors {
		t.Errorf("helm lint: %v", err)
	}
}

// objects is what one rendering made, each decoded into its API type.
type objects struct {
	configMaps      map[string]*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	daemonSets      []*appsv1.DaemonSet
	deployments     []*appsv1.Deployment
	serviceMonitors []*monitoringv1.ServiceMonitor
	podMonitors     []*monitoringv1.PodMonitor
	rules           []*monitoringv1.PrometheusRule
	amConfigs       []*monitoringv1alpha1.AlertmanagerConfig
}

// decode splits a manifest and decodes every object strictly: unknown or
// duplicate fields, an unexpected apiVersion or kind are errors.
func decode(t *testing.T, manifest string) objects {
	t.Helper()
	o := objects{configMaps: map[string]*corev1.ConfigMap{}}
	docs := releaseutil.SplitManifests(manifest)
	if len(docs) == 0 {
		t.Fatal("nothing rendered")
	}
	for _, doc := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "apps/v1 DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "monitoring.coreos.com/v1 ServiceMonitor":
			obj = &monitoringv1.ServiceMonitor{}
		case "monitoring.coreos.com/v1 PodMonitor":
			obj = &monitoringv1.PodMonitor{}
		case "monitoring.coreos.com/v1 PrometheusRule":
			obj = &monitoringv1.PrometheusRule{}
		case "monitoring.coreos.com/v1alpha1 AlertmanagerConfig":
			obj = &monitoringv1alpha1.AlertmanagerConfig{}
		default:
			t.Fatalf("rendered an object of unexpected type %s %s:\n%s", tm.APIVersion, tm.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s %s does not decode strictly: %v\n%s", tm.APIVersion, tm.Kind, err, doc)
		}
		switch x := obj.(type) {
		case *corev1.ConfigMap:
			o.configMaps[x.Name] = x
		case *corev1.Secret:
			o.secrets = append(o.secrets, x)
		case *corev1.Service:
			o.services = append(o.services, x)
		case *appsv1.DaemonSet:
			o.daemonSets = append(o.daemonSets, x)
		case *appsv1.Deployment:
			o.deployments = append(o.deployments, x)
		case *monitoringv1.ServiceMonitor:
			o.serviceMonitors = append(o.serviceMonitors, x)
		case *monitoringv1.PodMonitor:
			o.podMonitors = append(o.podMonitors, x)
		case *monitoringv1.PrometheusRule:
			o.rules = append(o.rules, x)
		case *monitoringv1alpha1.AlertmanagerConfig:
			o.amConfigs = append(o.amConfigs, x)
		}
		if m, ok := obj.(metav1.Object); ok && m.GetNamespace() != namespace {
			t.Errorf("%s %s is in namespace %q, want %q", tm.Kind, m.GetName(), m.GetNamespace(), namespace)
		}
	}
	return o
}

// pod is the one workload's pod template.
func (o objects) pod(t *testing.T) (kind string, spec corev1.PodTemplateSpec) {
	t.Helper()
	switch {
	case len(o.daemonSets) == 1 && len(o.deployments) == 0:
		return "DaemonSet", o.daemonSets[0].Spec.Template
	case len(o.deployments) == 1 && len(o.daemonSets) == 0:
		return "Deployment", o.deployments[0].Spec.Template
	}
	t.Fatalf("want one workload, got %d DaemonSets and %d Deployments", len(o.daemonSets), len(o.deployments))
	return "", corev1.PodTemplateSpec{}
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hasArg(c corev1.Container, arg string) bool { return slices.Contains(c.Args, arg) }

func describe(v any) string { return strings.TrimSpace(fmt.Sprintf("%+v", v)) }
