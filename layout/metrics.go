package layout

import (
	"errors"
	"math"
	"strconv"
)

// Metrics are the evaluation metrics a checkpoint carries, by name
// (val_loss, eval_accuracy), as its framework wrote them into its names or
// its state. A value may be NaN or ±Inf: a diverged run writes them, and
// they are never the best.
type Metrics map[string]float64

// parseMetric reads a metric's value as Python writes a number: 0.41,
// -1.2e-03, 98, nan, inf. A value beyond float64's range is ±Inf (or 0).
func parseMetric(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, err
	}
	return v, nil
}

// merge adds the metrics of another entry of the same checkpoint and
// reports whether the two disagree on a value.
func (m *Metrics) merge(other Metrics) (conflict bool) {
	for k, v := range other {
		if *m == nil {
			*m = Metrics{}
		}
		old, ok := (*m)[k]
		switch {
		case !ok:
			(*m)[k] = v
		case old != v && !(math.IsNaN(old) && math.IsNaN(v)):
			conflict = true
		}
	}
	return conflict
}
