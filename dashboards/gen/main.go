// Command gen writes the Grafana dashboard JSON next to its source.
package main

import (
	"fmt"
	"os"

	"github.com/checkpoint-exporter/checkpoint_exporter/dashboards"
)

func main() {
	b, err := dashboards.JSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(dashboards.File, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
