// Command nullserver is the floor of the scrape benchmarks: a Go HTTP server
// that answers every request with the same 4.5 KB of text (about the size
// of a gzipped exposition) and does nothing else. What scrapeload measures
// against it is what the machine, the Go runtime and net/http cost before
// any exporter work.
package main

import (
	"flag"
	"log"
	"net/http"
	"strings"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:19878", "listen address")
	flag.Parse()
	body := []byte(strings.Repeat("x", 4500))
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})))
}
