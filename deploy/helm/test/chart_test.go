package helmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/checkpoint-exporter/checkpoint_exporter/config"
)

const sharedValues = `
mode: shared
shared:
  existingClaim: llama-checkpoints
config:
  targets:
    - name: llama
      path: /checkpoints/llama
`

// The values matrix: both modes × ServiceMonitor/PodMonitor/none × with and
// without AlertmanagerConfig; each case is linted, rendered, decoded strictly
// and checked.
func TestChartMatrix(t *testing.T) {
	for _, mode := range []string{"node-local", "shared"} {
		for _, monitor := range []string{"ServiceMonitor", "PodMonitor", ""} {
			for _, am := range []bool{false, true} {
				name := mode + "/" + monitor + "/alertmanagerConfig=" + map[bool]string{false: "off", true: "on"}[am]
				if monitor == "" {
					name = mode + "/no-monitor/alertmanagerConfig=" + map[bool]string{false: "off", true: "on"}[am]
				}
				t.Run(name, func(t *testing.T) {
					text := "monitor: {kind: \"" + monitor + "\"}\nalertmanagerConfig: {enabled: " + map[bool]string{false: "false", true: "true"}[am] + "}\n"
					if mode == "shared" {
						text += sharedValues
					}
					vals := values(t, text)
					lint(t, vals)
					manifest, err := template(t, vals)
					if err != nil {
						t.Fatal(err)
					}
					o := decode(t, manifest)
					checkWorkload(t, o, mode)
					checkConfig(t, o, mode)
					checkService(t, o)
					checkMonitor(t, o, monitor)
					checkAlertmanagerConfig(t, o, am)
					checkRule(t, o, "85%")
					checkDashboard(t, o)
				})
			}
		}
	}
}

func checkWorkload(t *testing.T, o objects, mode string) {
	t.Helper()
	kind, pod := o.pod(t)
	spec := pod.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	// Non-root, read-only, no capabilities, whatever the mode.
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("runAsNonRoot is not true")
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Errorf("runAsUser %v: want the checkpoints' owner, not root", sc.RunAsUser)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem is not read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities %+v: want drop [ALL], add none", sc.Capabilities)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the service account token is mounted: the exporter never uses the API")
	}
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.LivenessProbe, "/-/healthy"}, {c.ReadinessProbe, "/-/ready"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("probe %s: got %s", p.path, describe(p.probe))
		}
	}
	if !hasArg(c, "--config.file=/etc/checkpoint_exporter/config.yml") || !hasArg(c, "--webhook.token-file=/etc/checkpoint_exporter/token/token") {
		t.Errorf("args %v lack the config or the token file", c.Args)
	}
	if !strings.HasPrefix(c.Image, "ghcr.io/checkpoint-exporter/checkpoint-exporter:") || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %q pull policy %q", c.Image, c.ImagePullPolicy)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	if v := vols["token"]; v.Secret == nil || v.Secret.SecretName == "" {
		t.Errorf("token volume %s", describe(v))
	}
	// The deletion history: a writable emptyDir by default.
	if v, m := vols["history"], mounts["history"]; v.EmptyDir == nil || m.ReadOnly || m.MountPath != "/var/lib/checkpoint_exporter" ||
		!hasArg(c, "--prune.history-file=/var/lib/checkpoint_exporter/history.jsonl") || !hasArg(c, "--prune.history-max-bytes=10MiB") {
		t.Errorf("history volume %s mounted %s, args %v", describe(v), describe(m), c.Args)
	}

	switch mode {
	case "node-local":
		if kind != "DaemonSet" {
			t.Fatalf("node-local renders a %s", kind)
		}
		found := false
		for _, tol := range spec.Tolerations {
			if tol.Key == "nvidia.com/gpu" && tol.Operator == corev1.TolerationOpExists && tol.Effect == corev1.TaintEffectNoSchedule {
				found = true
			}
		}
		if !found {
			t.Errorf("no toleration for nvidia.com/gpu:NoSchedule: %v", spec.Tolerations)
		}
		if spec.PriorityClassName != "system-node-critical" {
			t.Errorf("priorityClassName %q", spec.PriorityClassName)
		}
		if !hasArg(c, "--pruner.autonomous") || !hasArg(c, "--webhook.match-label=node=$(NODE_NAME)") {
			t.Errorf("args %v: want --pruner.autonomous and --webhook.match-label=node=$(NODE_NAME)", c.Args)
		}
		nodeName := false
		for _, e := range c.Env {
			if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
				nodeName = true
			}
		}
		if !nodeName {
			t.Errorf("env %v lacks NODE_NAME from spec.nodeName", c.Env)
		}
		hostPaths := 0
		for name, v := range vols {
			if v.HostPath == nil || name == "history" {
				continue
			}
			hostPaths++
			m, ok := mounts[name]
			switch {
			case !ok:
				t.Errorf("hostPath volume %s is not mounted", name)
			case m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer:
				t.Errorf("hostPath %s mounted without HostToContainer propagation", v.HostPath.Path)
			case m.MountPath != v.HostPath.Path:
				t.Errorf("hostPath %s mounted at %s: the chart's host_path assumes the same path", v.HostPath.Path, m.MountPath)
			case m.ReadOnly:
				t.Errorf("hostPath %s mounted read-only: the pruner cannot delete", v.HostPath.Path)
			}
		}
		if hostPaths == 0 {
			t.Error("no hostPath volume")
		}
	case "shared":
		if kind != "Deployment" {
			t.Fatalf("shared renders a %s", kind)
		}
		d := o.deployments[0]
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
			t.Errorf("replicas %v strategy %q: want one pruner per volume, also during rollouts (1, Recreate)", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		if v := vols["checkpoints"]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "llama-checkpoints" {
			t.Errorf("checkpoints volume %s", describe(v))
		}
		if hasArg(c, "--pruner.autonomous") {
			t.Error("shared mode prunes autonomously by default")
		}
		for name, v := range vols {
			if v.HostPath != nil && name != "history" {
				t.Errorf("shared mode mounts host path %s", v.HostPath.Path)
			}
		}
	}
	if len(o.secrets) != 1 || len(o.secrets[0].Data["token"]) < 32 {
		t.Errorf("want one Secret with a token of 32+ bytes, got %d secrets", len(o.secrets))
	}
}

// checkConfig loads the rendered config file with the exporter's own strict
// loader.
func checkConfig(t *testing.T, o objects, mode string) {
	t.Helper()
	cm, ok := o.configMaps[releaseName]
	if !ok {
		t.Fatalf("no ConfigMap %s", releaseName)
	}
	file := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(file, []byte(cm.Data["config.yml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(file)
	if err != nil {
		t.Fatalf("the exporter refuses the rendered config: %v\n%s", err, cm.Data["config.yml"])
	}
	for _, tg := range cfg.Targets {
		if mode == "node-local" && tg.HostPath != tg.Path {
			t.Errorf("target %s: host_path %q, want its path %q (mounted at the same path)", tg.Name, tg.HostPath, tg.Path)
		}
		if mode == "shared" && tg.HostPath != "" {
			t.Errorf("target %s on a PVC has host_path %q", tg.Name, tg.HostPath)
		}
	}
}

func checkService(t *testing.T, o objects) {
	t.Helper()
	if len(o.services) != 1 {
		t.Fatalf("%d Services", len(o.services))
	}
	s := o.services[0]
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 9866 || s.Spec.Ports[0].TargetPort != intstr.FromString("http") || s.Spec.Ports[0].Name != "http" {
		t.Errorf("service ports %v", s.Spec.Ports)
	}
	_, pod := o.pod(t)
	for k, v := range s.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("service selects %s=%s, the pods have %q", k, v, pod.Labels[k])
		}
	}
}

func checkMonitor(t *testing.T, o objects, kind string) {
	t.Helper()
	_, pod := o.pod(t)
	var labels, selector map[string]string
	var port, path string
	var relabel []string
	switch kind {
	case "ServiceMonitor":
		if len(o.serviceMonitors) != 1 || len(o.podMonitors) != 0 {
			t.Fatalf("%d ServiceMonitors, %d PodMonitors", len(o.serviceMonitors), len(o.podMonitors))
		}
		m := o.serviceMonitors[0]
		labels, selector = m.Labels, m.Spec.Selector.MatchLabels
		if len(m.Spec.Endpoints) != 1 {
			t.Fatalf("%d endpoints", len(m.Spec.Endpoints))
		}
		port, path = m.Spec.Endpoints[0].Port, m.Spec.Endpoints[0].Path
		for _, r := range m.Spec.Endpoints[0].RelabelConfigs {
			relabel = append(relabel, string(r.SourceLabels[0])+"->"+r.TargetLabel)
		}
		for k, v := range selector {
			if o.services[0].Labels[k] != v {
				t.Errorf("ServiceMonitor selects %s=%s, the Service has %q", k, v, o.services[0].Labels[k])
			}
		}
	case "PodMonitor":
		if len(o.podMonitors) != 1 || len(o.serviceMonitors) != 0 {
			t.Fatalf("%d PodMonitors, %d ServiceMonitors", len(o.podMonitors), len(o.serviceMonitors))
		}
		m := o.podMonitors[0]
		labels, selector = m.Labels, m.Spec.Selector.MatchLabels
		if len(m.Spec.PodMetricsEndpoints) != 1 {
			t.Fatalf("%d endpoints", len(m.Spec.PodMetricsEndpoints))
		}
		e := m.Spec.PodMetricsEndpoints[0]
		if e.Port != nil {
			port = *e.Port
		}
		path = e.Path
		for _, r := range e.RelabelConfigs {
			relabel = append(relabel, string(r.SourceLabels[0])+"->"+r.TargetLabel)
		}
		for k, v := range selector {
			if pod.Labels[k] != v {
				t.Errorf("PodMonitor selects %s=%s, the pods have %q", k, v, pod.Labels[k])
			}
		}
	default:
		if len(o.podMonitors)+len(o.serviceMonitors) != 0 {
			t.Fatal("monitor.kind empty renders a monitor")
		}
		return
	}
	if labels["release"] != "kube-prometheus-stack" {
		t.Errorf("%s labels %v: kube-prometheus-stack selects release=kube-prometheus-stack", kind, labels)
	}
	if port != "http" || path != "/metrics" {
		t.Errorf("%s scrapes port %q path %q", kind, port, path)
	}
	if strings.Join(relabel, ",") != "__meta_kubernetes_pod_node_name->node" {
		t.Errorf("%s relabelings %v: want the node label the webhook routes by", kind, relabel)
	}
}

func checkAlertmanagerConfig(t *testing.T, o objects, enabled bool) {
	t.Helper()
	if !enabled {
		if len(o.amConfigs) != 0 {
			t.Fatal("AlertmanagerConfig rendered while disabled")
		}
		return
	}
	if len(o.amConfigs) != 1 {
		t.Fatalf("%d AlertmanagerConfigs", len(o.amConfigs))
	}
	spec := o.amConfigs[0].Spec
	r := spec.Route
	if r == nil || len(r.Matchers) != 1 || r.Matchers[0].Name != "prune" || r.Matchers[0].Value != "true" || r.Matchers[0].MatchType != "=" {
		t.Fatalf("route %s: want prune=\"true\"", describe(r))
	}
	if len(spec.Receivers) != 1 || spec.Receivers[0].Name != r.Receiver || len(spec.Receivers[0].WebhookConfigs) != 1 {
		t.Fatalf("receivers %s", describe(spec.Receivers))
	}
	w := spec.Receivers[0].WebhookConfigs[0]
	svc := o.services[0]
	want := "http://" + svc.Name + "." + namespace + ".svc:9866/webhook"
	if w.URL == nil || string(*w.URL) != want {
		t.Errorf("webhook URL %v, want %s", w.URL, want)
	}
	a := w.HTTPConfig
	if a == nil || a.Authorization == nil || a.Authorization.Credentials == nil ||
		a.Authorization.Credentials.Name != o.secrets[0].Name || a.Authorization.Credentials.Key != "token" {
		t.Errorf("webhook authorization %s: want the bearer token from Secret %s", describe(a), o.secrets[0].Name)
	}
}

func checkDashboard(t *testing.T, o objects) {
	t.Helper()
	cm, ok := o.configMaps[releaseName+"-dashboard"]
	if !ok {
		t.Fatal("no dashboard ConfigMap")
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard labels %v: Grafana's sidecar looks for grafana_dashboard=\"1\"", cm.Labels)
	}
	if got, want := cm.Data["checkpoint_exporter.json"], strings.TrimSuffix(readRepoFile(t, "dashboards/checkpoint_exporter.json"), "\n"); got != want {
		t.Error("the dashboard ConfigMap differs from dashboards/checkpoint_exporter.json")
	}
}

// The history on the node: a hostPath volume of a directory made by hand,
// mounted writable; or no history file at all.
func TestHistoryVolume(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		check        func(t *testing.T, v *corev1.Volume, m *corev1.VolumeMount, args []string)
	}{
		{"hostPath", "history: {volume: hostPath, hostPath: /srv/ce-history}", func(t *testing.T, v *corev1.Volume, m *corev1.VolumeMount, args []string) {
			if v == nil || v.HostPath == nil || v.HostPath.Path != "/srv/ce-history" || v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectory ||
				m == nil || m.ReadOnly || m.MountPath != "/var/lib/checkpoint_exporter" {
				t.Errorf("volume %s, mount %s", describe(v), describe(m))
			}
		}},
		{"disabled", "history: {enabled: false}", func(t *testing.T, v *corev1.Volume, m *corev1.VolumeMount, args []string) {
			if v != nil || m != nil || strings.Contains(strings.Join(args, " "), "history") {
				t.Errorf("volume %s, mount %s, args %v", describe(v), describe(m), args)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := values(t, tc.values)
			lint(t, vals)
			manifest, err := template(t, vals)
			if err != nil {
				t.Fatal(err)
			}
			o := decode(t, manifest)
			spec := o.daemonSets[0].Spec.Template.Spec
			c := spec.Containers[0]
			var v *corev1.Volume
			var m *corev1.VolumeMount
			for i := range spec.Volumes {
				if spec.Volumes[i].Name == "history" {
					v = &spec.Volumes[i]
				}
			}
			for i := range c.VolumeMounts {
				if c.VolumeMounts[i].Name == "history" {
					m = &c.VolumeMounts[i]
				}
			}
			tc.check(t, v, m, c.Args)
		})
	}
}
