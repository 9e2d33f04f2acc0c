// Package logging builds the exporter's loggers: the application's go-kit
// logger and, for exporter-toolkit, an slog logger writing through it, so
// every line of the process starts with the same keys (ts, caller, level,
// msg) in logfmt or JSON, at the --log.level chosen, with identical lines
// written once a minute at most.
//
// It imports no package of this module.
package logging

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Every log line of the process, ours (go-kit) and exporter-toolkit's
// (slog), starts with the same keys in the same order: ts, caller, level, msg.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func timestamp() any { return time.Now().UTC().Format(timeFormat) }

// New builds the application's go-kit logger writing to out in format
// ("logfmt" or "json") from severity lvl ("debug", "info", "warn",
// "error") and, for exporter-toolkit, an slog logger that writes through it
// with the same keys.
func New(out io.Writer, format, lvl string) (log.Logger, *slog.Logger) {
	w := log.NewSyncWriter(out)
	var base log.Logger
	if format == "json" {
		base = log.NewJSONLogger(w)
	} else {
		base = log.NewLogfmtLogger(w)
	}
	var opt level.Option
	var sl slog.Level
	switch lvl {
	case "debug":
		opt, sl = level.AllowDebug(), slog.LevelDebug
	case "warn":
		opt, sl = level.AllowWarn(), slog.LevelWarn
	case "error":
		opt, sl = level.AllowError(), slog.LevelError
	default:
		opt, sl = level.AllowInfo(), slog.LevelInfo
	}
	filtered := level.NewFilter(leading(newRepeatFilter(base, repeatWindow)), opt)
	l := log.With(filtered, "ts", log.Valuer(timestamp), "caller", log.DefaultCaller)
	return l, slog.New(&slogHandler{next: filtered, min: sl})
}

// leadingKeys start every line, in this order, whoever logs it.
var leadingKeys = []string{"ts", "caller", "level", "msg"}

// leading moves the leading keys to the front of every line (go-kit puts a
// level prefix before the logger's own context).
func leading(next log.Logger) log.Logger {
	return log.LoggerFunc(func(kv ...any) error {
		out := make([]any, 0, len(kv))
		for _, k := range leadingKeys {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					out = append(out, kv[i], kv[i+1])
					break
				}
			}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); !ok || !slices.Contains(leadingKeys, k) {
				out = append(out, kv[i], kv[i+1])
			}
		}
		return next.Log(out...)
	})
}

// slogHandler writes slog records as go-kit lines: ts, caller, level, msg,
// then the record's attributes.
type slogHandler struct {
	next   log.Logger
	min    slog.Level
	attrs  []any // key-value pairs from WithAttrs, keys already grouped
	prefix string
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	caller := ""
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		caller = filepath.Base(f.File) + ":" + strconv.Itoa(f.Line)
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	kv := make([]any, 0, 8+len(h.attrs)+2*r.NumAttrs())
	kv = append(kv, "ts", t.UTC().Format(timeFormat), "caller", caller, level.Key(), goKitLevel(r.Level), "msg", r.Message)
	kv = append(kv, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		kv = appendAttr(kv, h.prefix, a)
		return true
	})
	return h.next.Log(kv...)
}

func (h *slogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]any(nil), h.attrs...)
	for _, a := range as {
		n.attrs = appendAttr(n.attrs, h.prefix, a)
	}
	return &n
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

func appendAttr(kv []any, prefix string, a slog.Attr) []any {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			kv = appendAttr(kv, prefix+a.Key+".", g)
		}
		return kv
	}
	if a.Key == "" {
		return kv
	}
	return append(kv, prefix+a.Key, v.String())
}

func goKitLevel(l slog.Level) level.Value {
	switch {
	case l >= slog.LevelError:
		return level.ErrorValue()
	case l >= slog.LevelWarn:
		return level.WarnValue()
	case l >= slog.LevelInfo:
		return level.InfoValue()
	}
	return level.DebugValue()
}
