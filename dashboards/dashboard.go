// Package dashboards builds checkpoint_exporter's Grafana dashboard. The JSON
// in checkpoint_exporter.json is generated from Dashboard (go generate); a
// test fails when the checked-in file is stale.
package dashboards

//go:generate go run ./gen

import (
	"bytes"
	"encoding/json"
	"strings"
)

// File is the dashboard's file name in this directory.
const File = "checkpoint_exporter.json"

// sel is the label selector every query uses.
const sel = `instance=~"$instance",target=~"$target"`

type obj = map[string]any

// query substitutes the selector into a PromQL template ("{}" marks it).
func query(tmpl string) string { return strings.ReplaceAll(tmpl, "{}", "{"+sel+"}") }

var datasource = obj{"type": "prometheus", "uid": "${datasource}"}

type target struct{ expr, legend string }

type panel struct {
	title, description, kind, unit string
	targets                        []target
	w, h                           int
	thresholds                     []obj // steps
	min, max                       *float64
	decimals                       *int
}

func f(v float64) *float64 { return &v }
func i(v int) *int         { return &v }

var defaultSteps = []obj{{"color": "green", "value": nil}}

func (p panel) json(id, x, y int) obj {
	targets := []obj{}
	for n, t := range p.targets {
		targets = append(targets, obj{
			"datasource":   datasource,
			"expr":         t.expr,
			"legendFormat": t.legend,
			"refId":        string(rune('A' + n)),
		})
	}
	steps := p.thresholds
	if steps == nil {
		steps = defaultSteps
	}
	defaults := obj{
		"unit":       p.unit,
		"thresholds": obj{"mode": "absolute", "steps": steps},
		"color":      obj{"mode": "palette-classic"},
	}
	if p.kind == "stat" {
		defaults["color"] = obj{"mode": "thresholds"}
	}
	if p.min != nil {
		defaults["min"] = *p.min
	}
	if p.max != nil {
		defaults["max"] = *p.max
	}
	if p.decimals != nil {
		defaults["decimals"] = *p.decimals
	}
	if p.kind == "timeseries" {
		style := "off"
		if p.thresholds != nil {
			style = "dashed"
		}
		defaults["custom"] = obj{"thresholdsStyle": obj{"mode": style}, "fillOpacity": 10, "lineWidth": 1, "showPoints": "never"}
	}
	out := obj{
		"id":          id,
		"type":        p.kind,
		"title":       p.title,
		"description": p.description,
		"datasource":  datasource,
		"gridPos":     obj{"x": x, "y": y, "w": p.w, "h": p.h},
		"targets":     targets,
		"fieldConfig": obj{"defaults": defaults, "overrides": []obj{}},
	}
	if p.kind == "stat" {
		out["options"] = obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "value", "graphMode": "none", "textMode": "auto"}
	} else {
		out["options"] = obj{"legend": obj{"displayMode": "list", "placement": "bottom", "showLegend": true}, "tooltip": obj{"mode": "multi", "sort": "desc"}}
	}
	return out
}

type row struct {
	title  string
	panels []panel
}

func rows() []row {
	watermarks := []obj{{"color": "green", "value": nil}, {"color": "orange", "value": 0.70}, {"color": "red", "value": 0.85}}
	fewSaves := []obj{{"color": "red", "value": nil}, {"color": "orange", "value": 1}, {"color": "green", "value": 3}}
	return []row{
		{"Disk", []panel{
			{title: "Filesystem usage", kind: "timeseries", unit: "percentunit", w: 12, h: 8, min: f(0), max: f(1), thresholds: watermarks,
				description: "Used share of each target's filesystem (1 - avail/size), the value the pruner's watermarks use. Dashed lines: the default low (70%) and high (85%) watermarks.",
				targets:     []target{{query("1 - checkpoint_filesystem_avail_bytes{} / checkpoint_filesystem_size_bytes{}"), "{{target}} {{mountpoint}}"}}},
			{title: "Available space", kind: "timeseries", unit: "bytes", w: 12, h: 8, min: f(0),
				description: "Space available to the training job on each target's filesystem (f_bavail).",
				targets:     []target{{query("checkpoint_filesystem_avail_bytes{}"), "{{target}} {{mountpoint}}"}}},
			{title: "Saves until full", kind: "stat", unit: "none", w: 6, h: 5, thresholds: fewSaves,
				description: "How many more checkpoints of the newest one's size fit in the available space.",
				targets:     []target{{query("checkpoint_dir_saves_until_full{}"), "{{target}}"}}},
			{title: "Time until full", kind: "stat", unit: "s", w: 6, h: 5,
				description: "Saves until full times the observed save interval: when the disk fills at this cadence if nothing is pruned.",
				targets:     []target{{query("checkpoint_dir_saves_until_full{} * checkpoint_dir_save_interval_seconds{}"), "{{target}}"}}},
			{title: "Directory up", kind: "stat", unit: "bool_yes_no", w: 6, h: 5, thresholds: []obj{{"color": "red", "value": nil}, {"color": "green", "value": 1}},
				description: "Whether the last scan of each target directory succeeded.",
				targets:     []target{{query("checkpoint_dir_up{}"), "{{target}}"}}},
			{title: "Free inodes", kind: "stat", unit: "percentunit", w: 6, h: 5, decimals: i(1),
				description: "Share of inodes still free on each target's filesystem; sharded checkpoints use many files.",
				targets:     []target{{query("checkpoint_filesystem_files_free{} / checkpoint_filesystem_files{}"), "{{target}}"}}},
		}},
		{"Checkpoints and training", []panel{
			{title: "Checkpoints", kind: "timeseries", unit: "none", w: 8, h: 8, min: f(0), decimals: i(0),
				description: "Complete checkpoints, checkpoints still being written or left unfinished, and torn saves (cut short: not checkpoints).",
				targets: []target{
					{query("checkpoint_dir_checkpoints{}"), "{{target}} complete"},
					{query("checkpoint_dir_incomplete_checkpoints{}"), "{{target}} incomplete"},
					{query("checkpoint_dir_torn_checkpoints{}"), "{{target}} torn"},
				}},
			{title: "Checkpoint disk usage", kind: "timeseries", unit: "bytes", w: 8, h: 8, min: f(0),
				description: "Disk usage of all checkpoints of each target, and of its newest checkpoint.",
				targets: []target{
					{query("checkpoint_dir_bytes{}"), "{{target}} all"},
					{query("checkpoint_dir_latest_bytes{}"), "{{target}} newest"},
				}},
			{title: "Torn saves", kind: "stat", unit: "none", w: 4, h: 8, decimals: i(0), thresholds: []obj{{"color": "green", "value": nil}, {"color": "red", "value": 1}},
				description: "Saves cut short (disk full, killed, preempted): a file shorter than its own header says, or without its end record. A resume that picks the highest step would load one; the pruner deletes them first once nothing writes to them. `checkpoint_exporter scan` says why each is torn.",
				targets:     []target{{query("checkpoint_dir_torn_checkpoints{}"), "{{target}}"}}},
			{title: "Time since last checkpoint", kind: "stat", unit: "s", w: 4, h: 8,
				description: "Age of the newest complete checkpoint. Growing far beyond the save interval means the run crashed, hangs or finished.",
				targets:     []target{{query("time() - checkpoint_dir_latest_timestamp_seconds{}"), "{{target}}"}}},
			{title: "Latest step", kind: "timeseries", unit: "none", w: 8, h: 8, decimals: i(0),
				description: "Step of the newest complete checkpoint: training progress.",
				targets:     []target{{query("checkpoint_dir_latest_step{}"), "{{target}}"}}},
			{title: "Steps per hour", kind: "timeseries", unit: "none", w: 8, h: 8, min: f(0),
				description: "Training speed as seen by the checkpoints: growth of the latest step, per hour.",
				targets:     []target{{query("deriv(checkpoint_dir_latest_step{}[$__rate_interval]) * 3600"), "{{target}}"}}},
			{title: "Share of max_bytes", kind: "timeseries", unit: "percentunit", w: 8, h: 8, min: f(0),
				thresholds:  []obj{{"color": "green", "value": nil}, {"color": "red", "value": 1}},
				description: "Disk usage of each target's checkpoints as a share of its max_bytes (targets with max_bytes only). Above 100% the pruner deletes the oldest; staying above means what is left is kept.",
				targets:     []target{{query("checkpoint_dir_bytes{} / checkpoint_dir_max_bytes{}"), "{{target}}"}}},
		}},
		{"Pruning", []panel{
			{title: "Prune runs", kind: "timeseries", unit: "none", w: 8, h: 8, min: f(0),
				description: "Prune runs by trigger (webhook, autonomous) and result (ok, dry_run, noop, insufficient, error).",
				targets:     []target{{query("sum by (target, trigger, result) (increase(checkpoint_prune_runs_total{}[$__rate_interval]))"), "{{target}} {{trigger}} {{result}}"}}},
			{title: "Bytes freed", kind: "timeseries", unit: "bytes", w: 8, h: 8, min: f(0),
				description: "Disk usage of the checkpoints the pruner deleted, hard links once: what it freed. Not the change in free space, which other writers move (deleted checkpoints have their own panel).",
				targets: []target{
					{query("sum by (target) (increase(checkpoint_prune_freed_bytes_total{}[$__rate_interval]))"), "{{target}} freed"},
				}},
			{title: "Checkpoints deleted", kind: "timeseries", unit: "none", w: 8, h: 8, min: f(0),
				description: "Checkpoints deleted by the pruner.",
				targets:     []target{{query("sum by (target) (increase(checkpoint_prune_deleted_checkpoints_total{}[$__rate_interval]))"), "{{target}}"}}},
			{title: "Webhook requests", kind: "timeseries", unit: "reqps", w: 12, h: 8, min: f(0),
				description: "Alertmanager webhook requests by HTTP status code (4xx: refused, nothing deleted).",
				targets:     []target{{`sum by (code) (rate(checkpoint_webhook_requests_total{instance=~"$instance"}[$__rate_interval]))`, "{{code}}"}}},
			{title: "Webhook alerts by outcome", kind: "timeseries", unit: "reqps", w: 12, h: 8, min: f(0),
				description: "Alerts received on the webhook by status and what came of them (pruned, dry_run, noop, ignored).",
				targets:     []target{{`sum by (status, outcome) (rate(checkpoint_webhook_alerts_total{instance=~"$instance"}[$__rate_interval]))`, "{{status}} {{outcome}}"}}},
		}},
		{"Offload", []panel{
			{title: "Waiting for offload", kind: "timeseries", unit: "none", w: 6, h: 8, min: f(0), decimals: i(0),
				description: "Settled checkpoints not yet confirmed offloaded. Only offloaded ones are pruned: a count that keeps growing means offloading falls behind the saves.",
				targets:     []target{{query("checkpoint_offload_pending{}"), "{{target}}"}}},
			{title: "Offload runs", kind: "timeseries", unit: "none", w: 6, h: 8, min: f(0),
				description: "Offloads by result (ok, failed, timeout, killed, changed, error); the log says why each failed.",
				targets:     []target{{query("sum by (target, result) (increase(checkpoint_offload_runs_total{}[$__rate_interval]))"), "{{target}} {{result}}"}}},
			{title: "Offload throughput", kind: "timeseries", unit: "Bps", w: 6, h: 8, min: f(0),
				description: "Disk usage of the checkpoints offloaded, per second, against the rate the training job writes them.",
				targets: []target{
					{query("sum by (target) (rate(checkpoint_offload_bytes_total{}[$__rate_interval]))"), "{{target}} offloaded"},
					{query("checkpoint_dir_latest_bytes{} / checkpoint_dir_save_interval_seconds{}"), "{{target}} written"},
				}},
			{title: "Offload duration (p90)", kind: "timeseries", unit: "s", w: 6, h: 8, min: f(0),
				description: "90th percentile of the time one checkpoint's offload takes; compare with the save interval.",
				targets:     []target{{query("histogram_quantile(0.9, sum by (target, le) (rate(checkpoint_offload_duration_seconds_bucket{}[$__rate_interval])))"), "{{target}}"}}},
		}},
		{"Exporter", []panel{
			{title: "Scan duration", kind: "timeseries", unit: "s", w: 12, h: 7, min: f(0),
				description: "Duration of the last background scan of each target. Scrapes never wait for scans.",
				targets:     []target{{query("checkpoint_scan_duration_seconds{}"), "{{target}}"}}},
			{title: "Scan errors", kind: "timeseries", unit: "none", w: 12, h: 7, min: f(0),
				description: "Entries that could not be read during scans (permissions): their size is missing from the totals.",
				targets:     []target{{query("increase(checkpoint_scan_errors_total{}[$__rate_interval])"), "{{target}}"}}},
		}},
	}
}

// Dashboard returns the dashboard as Grafana JSON model.
func Dashboard() obj {
	var panels []obj
	id, y := 1, 0
	for _, r := range rows() {
		panels = append(panels, obj{"id": id, "type": "row", "title": r.title, "collapsed": false,
			"gridPos": obj{"x": 0, "y": y, "w": 24, "h": 1}, "panels": []obj{}})
		id++
		y++
		x, rowH := 0, 0
		for _, p := range r.panels {
			if x+p.w > 24 {
				x, y = 0, y+rowH
				rowH = 0
			}
			panels = append(panels, p.json(id, x, y))
			id++
			x += p.w
			rowH = max(rowH, p.h)
		}
		y += rowH
	}
	variable := func(name, label, q string) obj {
		return obj{
			"name": name, "label": label, "type": "query", "datasource": datasource,
			"query":      obj{"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1},
			"definition": q, "refresh": 2, "includeAll": true, "multi": true, "allValue": ".*", "sort": 1,
			"current": obj{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		}
	}
	return obj{
		"title":         "checkpoint_exporter",
		"uid":           "checkpoint-exporter",
		"description":   "Checkpoint directories, their filesystems, training progress and alert-driven pruning (checkpoint_exporter).",
		"tags":          []string{"checkpoint_exporter", "training", "disk"},
		"schemaVersion": 41,
		"version":       1,
		"editable":      true,
		"graphTooltip":  1,
		"refresh":       "30s",
		"time":          obj{"from": "now-6h", "to": "now"},
		"timezone":      "browser",
		"panels":        panels,
		"templating": obj{"list": []obj{
			{"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "refresh": 1,
				"current": obj{"selected": false, "text": "default", "value": "default"}},
			variable("instance", "Instance", "label_values(checkpoint_dir_up, instance)"),
			variable("target", "Target", `label_values(checkpoint_dir_up{instance=~"$instance"}, target)`),
		}},
		"annotations": obj{"list": []obj{
			{"name": "Annotations & Alerts", "builtIn": 1, "type": "dashboard", "enable": true, "hide": true,
				"datasource": obj{"type": "grafana", "uid": "-- Grafana --"}, "iconColor": "rgba(0, 211, 255, 1)"},
			{"name": "Prunes", "enable": true, "iconColor": "orange", "datasource": datasource,
				"expr": query("changes(checkpoint_prune_deleted_checkpoints_total{}[2m]) > 0"),
				"step": "1m", "titleFormat": "prune", "textFormat": "{{target}}: checkpoints deleted",
				"tagKeys": "target"},
		}},
	}
}

// JSON renders the dashboard as it is checked in.
func JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Dashboard()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Queries returns every PromQL expression of a dashboard JSON model: panel
// targets and annotations.
func Queries(model []byte) ([]string, error) {
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(model, &d); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out = append(out, t.Expr)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, a.Expr)
		}
	}
	return out, nil
}

// Expand replaces the dashboard's variables with values for running a query
// outside Grafana: every instance and target, and a rate interval.
func Expand(expr, rateInterval string) string {
	return strings.NewReplacer("$instance", ".*", "$target", ".*", "$__rate_interval", rateInterval).Replace(expr)
}
