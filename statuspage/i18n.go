package statuspage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Languages the page speaks: English, and Simplified Chinese for the
// readers of README.zh-CN.md.
const (
	langEN = "en"
	langZH = "zh-CN"
)

var languages = []string{langEN, langZH}

// chooseLang picks the page's language: ?lang= if it names one the page
// speaks, else the best of the request's Accept-Language (RFC 9110 §12.5.4:
// q-values, "*"), else English. Any Chinese (zh, zh-TW, zh-Hant) gets the
// Chinese page: the only Chinese there is.
func chooseLang(query, acceptLanguage string) string {
	for _, l := range languages {
		if strings.EqualFold(query, l) {
			return l
		}
	}
	type choice struct {
		lang string
		q    float64
		pos  int
	}
	var cs []choice
	for i, part := range strings.Split(acceptLanguage, ",") {
		fields := strings.Split(part, ";")
		tag := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, f := range fields[1:] {
			if v, ok := strings.CutPrefix(strings.TrimSpace(f), "q="); ok {
				if p, err := strconv.ParseFloat(v, 64); err == nil && p >= 0 && p <= 1 {
					q = p
				} else {
					q = 0
				}
			}
		}
		var lang string
		switch {
		case q <= 0:
		case tag == "zh" || strings.HasPrefix(tag, "zh-"):
			lang = langZH
		case tag == "en" || strings.HasPrefix(tag, "en-") || tag == "*":
			lang = langEN
		}
		if lang != "" {
			cs = append(cs, choice{lang, q, i})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].q > cs[j].q })
	if len(cs) > 0 {
		return cs[0].lang
	}
	return langEN
}

// catalog is the page's words in one language.
type catalog struct {
	lang  string
	words map[string]string
}

// T says key in the catalog's language; args fill its verbs. A key missing
// from a language falls back to English, then to the key itself.
func (c catalog) T(key string, args ...any) string {
	s, ok := c.words[key]
	if !ok {
		if s, ok = messages[langEN][key]; !ok {
			s = key
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Lang is the catalog's language tag.
func (c catalog) Lang() string { return c.lang }

func catalogFor(lang string) catalog { return catalog{lang: lang, words: messages[lang]} }

// messages is the catalogue: every word on the page, by key and language.
// Reason codes (verdict.Code*) are keys under "reason.", statuses under
// "status.", triggers under "trigger.", results under "result.".
var messages = map[string]map[string]string{
	langEN: {
		"title":                    "checkpoint_exporter status",
		"lang.switch":              "中文",
		"links":                    "Links",
		"link.metrics":             "Metrics",
		"link.api":                 "Status API (JSON)",
		"link.health":              "Health",
		"link.ready":               "Readiness",
		"webhook":                  "Alertmanager webhook: POST %s",
		"generated":                "Generated %s",
		"version":                  "Version %s",
		"autorefresh":              "refresh every %d s",
		"noscript":                 "Reload the page to refresh it.",
		"readonly.note":            "This page only shows: nothing on it deletes anything.",
		"history.memory":           "Deletion history: kept in memory only (set --prune.history-file to keep it across restarts).",
		"history.file":             "Deletion history: %s",
		"overview":                 "Targets",
		"col.target":               "target",
		"col.used":                 "used",
		"col.checkpoints":          "checkpoints",
		"col.next":                 "next prune",
		"col.lastrun":              "last prune",
		"col.name":                 "name",
		"col.step":                 "step",
		"col.size":                 "size",
		"col.age":                  "age",
		"col.mtime":                "written",
		"col.status":               "status",
		"col.offload":              "offload",
		"col.time":                 "time",
		"col.trigger":              "trigger",
		"col.result":               "result",
		"col.deleted":              "deleted",
		"col.freed":                "freed",
		"col.skipped":              "skipped",
		"col.reason":               "why",
		"none":                     "none",
		"down":                     "DOWN: %s",
		"notscanned":               "not scanned yet",
		"mode.execute":             "prunes (execute)",
		"mode.dryrun":              "dry run (prune.execute: false): deletes nothing",
		"layout":                   "layout %s",
		"series":                   "series %s",
		"norule":                   "No rule for this layout: its %d checkpoints are counted but never pruned. To make them prunable, add to the target's configuration:",
		"norule.candidates":        "No rule for this layout, and the names read as %d series: none is counted. Add the one that holds the checkpoints to the target's configuration:",
		"scanned":                  "scanned %s",
		"policy":                   "keep_last %d · high watermark %s · low watermark %s · headroom %s",
		"maxbytes":                 "max_bytes %s",
		"fs":                       "Filesystem %s (%s, %s)",
		"fs.used":                  "%s used of %s (%s), %s available",
		"fs.readonly":              "read-only",
		"fs.high":                  "high watermark %s",
		"fs.low":                   "low watermark %s",
		"fs.highreached":           "at or past the high watermark: a prune is needed",
		"ckbytes":                  "checkpoints take %s",
		"ckbytes.max":              "checkpoints take %s of max_bytes %s",
		"untilfull":                "%s saves until full",
		"untilfull.time":           "full in %s at %s/s (a save every %s)",
		"untilfull.norate":         "write rate unknown (fewer than two saves apart in time)",
		"next":                     "Next prune",
		"next.noop":                "Nothing to delete now: usage is at or below the low watermark %s and the free space covers the headroom.",
		"next.notyet":              "The high watermark %s is not reached: a prune comes once it is (an alert, or the autonomous guard). One run now would do this:",
		"next.delete":              "A prune now would delete %d checkpoints (%s) to reach the low watermark %s (%s must be freed).",
		"next.over":                "The checkpoints are %s over max_bytes.",
		"next.insufficient":        "Not enough may be deleted: %s short, everything else is kept.",
		"next.dryrun":              "This target is in dry run: the prune would only report this.",
		"next.inline":              "First in line once a prune is needed:",
		"next.nothing":             "Nothing may be deleted: every checkpoint is kept.",
		"chart":                    "Usage, last 24 hours",
		"chart.used":               "filesystem used",
		"chart.ck":                 "checkpoints",
		"chart.empty":              "Collecting samples (one a minute, kept in memory for 24 hours).",
		"checkpoints":              "Checkpoints (%d): %d kept, %d prunable, %d incomplete, %d torn",
		"checkpoints.none":         "No checkpoints.",
		"checkpoints.more":         "… %d more, not shown here:",
		"checkpoints.all":          "show all",
		"offload":                  "Offload",
		"runs":                     "Recent prunes (%d)",
		"runs.none":                "No prune of this target yet.",
		"runs.alerts":              "alerts",
		"runs.omitted":             "and %d more alerts",
		"runs.freed":               "freed %s",
		"runs.wouldfree":           "would free %s",
		"runs.short":               "%s short of the goal",
		"runs.error":               "error: %s",
		"pinnedby":                 "pinned by %s",
		"torn":                     "torn: %s",
		"status.keep":              "keep",
		"status.prunable":          "prunable",
		"status.incomplete":        "incomplete",
		"status.torn":              "torn",
		"item.deleted":             "deleted",
		"item.would":               "would delete",
		"item.skipped":             "skipped",
		"trigger.cli":              "command line",
		"trigger.webhook":          "webhook",
		"trigger.autonomous":       "autonomous guard",
		"result.ok":                "ok",
		"result.dry_run":           "dry run",
		"result.noop":              "nothing to do",
		"result.insufficient":      "insufficient",
		"result.error":             "error",
		"result.":                  "unknown (record cut short)",
		"reason.incomplete":        "incomplete",
		"reason.uncertain":         "uncertain (layout detection not sure)",
		"reason.no_rule":           "uncertain (no rule for this layout)",
		"reason.pinned":            "pinned by %s",
		"reason.protected":         "protected",
		"reason.torn_young":        "torn, but written to too recently to delete",
		"reason.not_offloaded":     "not offloaded",
		"reason.suspect":           "suspect: %s",
		"reason.too_young":         "too young (min_age)",
		"reason.latest":            "latest %s",
		"reason.keep_within":       "keep_within",
		"reason.keep_every":        "keep_every",
		"reason.not_needed":        "not needed for the goal",
		"reason.torn":              "torn save: %s (goes first)",
		"reason.older_than_newest": "older than the newest %s",
		"reason.free_space":        "oldest, to free space",
		"reason.max_bytes":         "oldest, over max_bytes",
		"reason.other":             "%s",
		"cause.changed":            "changed since the scan",
		"cause.gone":               "gone since the scan",
		"cause.mount_point":        "another filesystem inside",
		"cause.error":              "error",
	},
	langZH: {
		"title":                    "checkpoint_exporter 状态",
		"lang.switch":              "English",
		"links":                    "链接",
		"link.metrics":             "指标",
		"link.api":                 "状态 API（JSON）",
		"link.health":              "健康检查",
		"link.ready":               "就绪检查",
		"webhook":                  "Alertmanager webhook：POST %s",
		"generated":                "生成于 %s",
		"version":                  "版本 %s",
		"autorefresh":              "每 %d 秒刷新",
		"noscript":                 "刷新页面以更新。",
		"readonly.note":            "本页只用于查看：页面上没有任何删除操作。",
		"history.memory":           "删除历史：仅保存在内存中（设置 --prune.history-file 可在重启后保留）。",
		"history.file":             "删除历史：%s",
		"overview":                 "目标",
		"col.target":               "目标",
		"col.used":                 "已用",
		"col.checkpoints":          "检查点",
		"col.next":                 "下次清理",
		"col.lastrun":              "上次清理",
		"col.name":                 "名称",
		"col.step":                 "步数",
		"col.size":                 "大小",
		"col.age":                  "已过",
		"col.mtime":                "写入时间",
		"col.status":               "状态",
		"col.offload":              "转存",
		"col.time":                 "时间",
		"col.trigger":              "触发",
		"col.result":               "结果",
		"col.deleted":              "已删除",
		"col.freed":                "释放",
		"col.skipped":              "跳过",
		"col.reason":               "原因",
		"none":                     "无",
		"down":                     "不可用：%s",
		"notscanned":               "尚未扫描",
		"mode.execute":             "会删除（execute）",
		"mode.dryrun":              "演练模式（prune.execute: false）：不删除任何文件",
		"layout":                   "布局 %s",
		"series":                   "序列 %s",
		"norule":                   "没有识别此布局的规则：其 %d 个检查点会被统计，但永远不会被删除。若要允许清理，请在该目标的配置中加入：",
		"norule.candidates":        "没有识别此布局的规则，且这些名称可读作 %d 个序列：都不统计。请把存放检查点的那个序列加入该目标的配置：",
		"scanned":                  "扫描于 %s",
		"policy":                   "keep_last %d · 高水位 %s · 低水位 %s · 余量 %s",
		"maxbytes":                 "max_bytes %s",
		"fs":                       "文件系统 %s（%s，%s）",
		"fs.used":                  "已用 %s / 共 %s（%s），可用 %s",
		"fs.readonly":              "只读",
		"fs.high":                  "高水位 %s",
		"fs.low":                   "低水位 %s",
		"fs.highreached":           "已达到高水位：需要清理",
		"ckbytes":                  "检查点占用 %s",
		"ckbytes.max":              "检查点占用 %s，max_bytes 为 %s",
		"untilfull":                "还能保存 %s 次",
		"untilfull.time":           "按 %[2]s/秒的写入速度（每 %[3]s 保存一次），%[1]s 后写满",
		"untilfull.norate":         "写入速度未知（时间上分开的保存不足两次）",
		"next":                     "下次清理",
		"next.noop":                "目前无需删除：使用率不高于低水位 %s，且可用空间足够余量。",
		"next.notyet":              "尚未达到高水位 %s：达到后才会清理（告警或自主清理）。若现在清理，将会：",
		"next.delete":              "现在清理将删除 %d 个检查点（%s），以降到低水位 %s（需释放 %s）。",
		"next.over":                "检查点超出 max_bytes %s。",
		"next.insufficient":        "可删除的不够：还差 %s，其余均须保留。",
		"next.dryrun":              "此目标处于演练模式：清理只会报告，不会删除。",
		"next.inline":              "需要清理时最先删除：",
		"next.nothing":             "没有可删除的检查点：全部保留。",
		"chart":                    "最近 24 小时使用情况",
		"chart.used":               "文件系统已用",
		"chart.ck":                 "检查点",
		"chart.empty":              "正在收集样本（每分钟一个，在内存中保留 24 小时）。",
		"checkpoints":              "检查点（%d）：保留 %d，可删除 %d，未完成 %d，已截断 %d",
		"checkpoints.none":         "没有检查点。",
		"checkpoints.more":         "……另有 %d 个未在此显示：",
		"checkpoints.all":          "显示全部",
		"offload":                  "转存",
		"runs":                     "最近的清理（%d）",
		"runs.none":                "此目标尚未清理过。",
		"runs.alerts":              "告警",
		"runs.omitted":             "另有 %d 个告警",
		"runs.freed":               "释放 %s",
		"runs.wouldfree":           "将释放 %s",
		"runs.short":               "距目标还差 %s",
		"runs.error":               "错误：%s",
		"pinnedby":                 "被 %s 固定",
		"torn":                     "已截断：%s",
		"status.keep":              "保留",
		"status.prunable":          "可删除",
		"status.incomplete":        "未完成",
		"status.torn":              "已截断",
		"item.deleted":             "已删除",
		"item.would":               "将删除",
		"item.skipped":             "已跳过",
		"trigger.cli":              "命令行",
		"trigger.webhook":          "webhook",
		"trigger.autonomous":       "自主清理",
		"result.ok":                "完成",
		"result.dry_run":           "演练",
		"result.noop":              "无需操作",
		"result.insufficient":      "不足",
		"result.error":             "出错",
		"result.":                  "未知（记录不完整）",
		"reason.incomplete":        "未完成",
		"reason.uncertain":         "不确定（布局识别无法确定）",
		"reason.no_rule":           "不确定（没有识别此布局的规则）",
		"reason.pinned":            "被 %s 固定",
		"reason.protected":         "受 protect 保护",
		"reason.torn_young":        "已截断，但最近仍有写入，暂不删除",
		"reason.not_offloaded":     "尚未转存",
		"reason.suspect":           "可疑：%s",
		"reason.too_young":         "太新（未满 min_age）",
		"reason.latest":            "最新的 %s 个之一",
		"reason.keep_within":       "在 keep_within 之内",
		"reason.keep_every":        "keep_every 保留",
		"reason.not_needed":        "达到目标无需删除",
		"reason.torn":              "已截断的保存：%s（最先删除）",
		"reason.older_than_newest": "早于最新的 %s 个",
		"reason.free_space":        "最旧的，为释放空间",
		"reason.max_bytes":         "最旧的，超出 max_bytes",
		"reason.other":             "%s",
		"cause.changed":            "扫描后被修改",
		"cause.gone":               "扫描后已不存在",
		"cause.mount_point":        "内有其他文件系统",
		"cause.error":              "出错",
	},
}
