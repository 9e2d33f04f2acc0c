// Package httpserve holds the exporter's HTTP plumbing that is not an endpoint:
// the gzip handler /metrics is served through and the server's limits
// (timeouts, concurrent requests, connections per client).
//
// It imports no package of this module but internal/connlimit.
package httpserve

import (
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
)

// Gzip compresses h's responses for clients that accept gzip
// (Prometheus always does). It stands in for promhttp's own compression,
// which is switched off, for two reasons measured in BENCHMARKS.md: gzip's
// fastest level compresses an exposition in less than half the time of its
// default level for about 12% more bytes, and a few writers kept in a fixed
// free list survive garbage collections, where promhttp's sync.Pool loses its
// writers at every other collection, and a new writer allocates and clears
// 0.8 MB (default level) to 1.2 MB (fastest) of tables at its first write.
type Gzip struct {
	h    http.Handler
	free chan *gzip.Writer
}

// NewGzip returns the handler compressing h's responses.
func NewGzip(h http.Handler) *Gzip {
	return &Gzip{h: h, free: make(chan *gzip.Writer, 4)}
}

func (g *Gzip) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	rw.Header().Add("Vary", "Accept-Encoding")
	if !acceptsGzip(req.Header.Values("Accept-Encoding")) {
		g.h.ServeHTTP(rw, req)
		return
	}
	var zw *gzip.Writer
	select {
	case zw = <-g.free:
		zw.Reset(rw)
	default:
		zw, _ = gzip.NewWriterLevel(rw, gzip.BestSpeed) // the level is valid
	}
	gw := &gzipResponseWriter{ResponseWriter: rw, zw: zw}
	g.h.ServeHTTP(gw, req)
	if gw.started { // a body or at least a status was written
		zw.Close()
	}
	zw.Reset(nil) // keep no reference to this response
	select {
	case g.free <- zw:
	default:
	}
}

// gzipResponseWriter sends the body through zw. Headers are final at the
// first WriteHeader or Write, when the encoding is announced.
type gzipResponseWriter struct {
	http.ResponseWriter
	zw      *gzip.Writer
	started bool
}

func (w *gzipResponseWriter) WriteHeader(code int) {
	if !w.started {
		w.started = true
		h := w.Header()
		h.Set("Content-Encoding", "gzip")
		h.Del("Content-Length")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *gzipResponseWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	return w.zw.Write(p)
}

// acceptsGzip reads Accept-Encoding header values (RFC 9110, 12.5.3): gzip
// (or its alias x-gzip) listed with a quality above zero, or not listed and
// "*" listed with a quality above zero.
func acceptsGzip(values []string) bool {
	gzipQ, anyQ := -1.0, -1.0
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			if coding == "*" {
				anyQ = q
			} else {
				gzipQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return anyQ > 0
}
