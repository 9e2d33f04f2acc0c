{{/* Chart name, release-scoped full name, labels. */}}
{{- define "checkpoint-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "checkpoint-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "checkpoint-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "checkpoint-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "checkpoint-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "checkpoint-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret holding the webhook token (key "token"). */}}
{{- define "checkpoint-exporter.tokenSecret" -}}
{{- default (printf "%s-webhook" (include "checkpoint-exporter.fullname" .)) .Values.webhook.token.existingSecret }}
{{- end }}

{{/* Mode checks: one of the two shapes, with what it needs. */}}
{{- define "checkpoint-exporter.mode" -}}
{{- if eq .Values.mode "node-local" }}
{{- if not .Values.nodeLocal.hostPaths }}{{ fail "mode node-local needs nodeLocal.hostPaths" }}{{ end }}
{{- else if eq .Values.mode "shared" }}
{{- if not .Values.shared.existingClaim }}{{ fail "mode shared needs shared.existingClaim (the ReadWriteMany PVC with the checkpoints)" }}{{ end }}
{{- else }}
{{- fail (printf "mode must be node-local or shared, not %q" .Values.mode) }}
{{- end }}
{{- .Values.mode }}
{{- end }}

{{/*
The exporter's config file: config.prune under every target's own prune keys;
in node-local mode every target must lie under a mounted host path and gets
host_path (its path on the node: mounted at the same path).
*/}}
{{- define "checkpoint-exporter.config" -}}
{{- $mode := include "checkpoint-exporter.mode" . }}
{{- $targets := list }}
{{- range $i, $t := .Values.config.targets }}
{{- $t = deepCopy $t }}
{{- if not $t.path }}{{ fail (printf "config.targets[%d] has no path" $i) }}{{ end }}
{{- $_ := set $t "prune" (merge (deepCopy (default dict $t.prune)) (deepCopy $.Values.config.prune)) }}
{{- if eq $mode "node-local" }}
{{- $under := false }}
{{- range $.Values.nodeLocal.hostPaths }}
{{- if or (eq $t.path .) (hasPrefix (printf "%s/" (trimSuffix "/" .)) $t.path) }}{{ $under = true }}{{ end }}
{{- end }}
{{- if not $under }}{{ fail (printf "config.targets[%d].path %s is not under any of nodeLocal.hostPaths %v" $i $t.path $.Values.nodeLocal.hostPaths) }}{{ end }}
{{- if not (hasKey $t "host_path") }}{{ $_ := set $t "host_path" $t.path }}{{ end }}
{{- else }}
{{- $root := trimSuffix "/" $.Values.shared.mountPath }}
{{- if not (or (eq $t.path $root) (hasPrefix (printf "%s/" $root) $t.path)) }}{{ fail (printf "config.targets[%d].path %s is not under shared.mountPath %s" $i $t.path $root) }}{{ end }}
{{- end }}
{{- $targets = append $targets $t }}
{{- end }}
{{- $cfg := omit .Values.config "prune" "targets" }}
{{- $_ := set $cfg "targets" $targets }}
{{- toYaml $cfg }}
{{- end }}

{{/* high_watermark as the rule's ratio: "85%" -> 0.85. */}}
{{- define "checkpoint-exporter.highWatermarkRatio" -}}
{{- $hw := toString .Values.config.prune.high_watermark }}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?%$" $hw) }}
{{- fail (printf "config.prune.high_watermark %q: the PrometheusRule needs a percentage such as 85%%" $hw) }}
{{- end }}
{{- divf (trimSuffix "%" $hw | float64) 100 }}
{{- end }}
