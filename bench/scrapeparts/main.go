// Command scrapeparts serves what a scrape of the exporter costs, one part
// at a time, so that bench/scrapeload --pid can price each part
// (BENCHMARKS.md, "CPU per scrape"). Every mode answers with 9 KB of
// checkpoint-like text gzipped at the fastest level, as the exporter does;
// the modes add:
//
//	floor    nothing more
//	collect  the Go and process collectors, their Collect called directly
//	         and every metric written out to its protobuf form
//	gather   the same collectors through a prometheus.Registry and the text
//	         encoder, as promhttp serves them
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/checkpoint-exporter/checkpoint_exporter/collector"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:19879", "listen address")
	mode := flag.String("mode", "floor", "floor, collect or gather")
	flag.Parse()
	var static bytes.Buffer
	for i := 0; static.Len() < 9000; i++ {
		fmt.Fprintf(&static, "# HELP checkpoint_dir_bytes_%d Disk usage in bytes of all checkpoints of the target\n", i)
		fmt.Fprintf(&static, "# TYPE checkpoint_dir_bytes_%d gauge\ncheckpoint_dir_bytes_%d{target=\"run-%d\"} %d\n", i, i, i, 1e9+i*7919)
	}
	goc, proc := collectors.NewGoCollector(), collector.NewProcessCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(goc, proc)
	switch *mode {
	case "floor", "collect", "gather":
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
	free := make(chan *gzip.Writer, 4)
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		buf.Write(static.Bytes())
		switch *mode {
		case "collect":
			ch := make(chan prometheus.Metric, 256)
			goc.Collect(ch)
			proc.Collect(ch)
			close(ch)
			var m dto.Metric
			for x := range ch {
				m.Reset()
				if err := x.Write(&m); err != nil {
					log.Fatal(err)
				}
			}
		case "gather":
			mfs, err := reg.Gather()
			if err != nil {
				log.Fatal(err)
			}
			enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					log.Fatal(err)
				}
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		var zw *gzip.Writer
		select {
		case zw = <-free:
			zw.Reset(w)
		default:
			zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed) // the level is valid
		}
		zw.Write(buf.Bytes())
		zw.Close()
		select {
		case free <- zw:
		default:
		}
	})))
}
