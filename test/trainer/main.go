// Command trainer is a stand-in training job for the demo (make demo, make
// run) and the end-to-end test: it saves checkpoints at a steady rate, as
// Keras files or as Hugging Face checkpoint-N/ directories, logs each save
// to stderr ("step N: saved …" or "step N: save FAILED: …") and prints a
// JSON summary of the write errors on stdout when it ends.
//
// It is not part of the exporter's binary: nothing a user runs in
// production writes checkpoints.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// options are the command line.
type options struct {
	dir       string
	layout    string
	size      uint64
	interval  time.Duration
	saves     int
	stepEvery int64
	startStep int64
}

// summary is printed as JSON when the job ends.
type summary struct {
	Saves    int      `json:"saves"`
	Failed   int      `json:"failed"`
	ENOSPC   int      `json:"enospc"`
	Errors   []string `json:"errors"`
	LastStep int64    `json:"last_step"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parse(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "trainer:", err)
		return 2
	}
	if err := os.MkdirAll(opts.dir, 0o755); err != nil {
		fmt.Fprintln(stderr, "trainer:", err)
		return 1
	}
	sum := train(ctx, opts, stderr)
	if err := json.NewEncoder(stdout).Encode(sum); err != nil {
		return 1
	}
	return 0
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("trainer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", "", "directory to save into (required)")
	fs.StringVar(&o.layout, "layout", "keras", "keras (checkpoint_step_N.keras) or hf (checkpoint-N/ directories)")
	size := fs.String("size", "84MB", "size of one checkpoint")
	fs.DurationVar(&o.interval, "interval", time.Second, "time between saves")
	fs.IntVar(&o.saves, "saves", 0, "number of saves (0: until interrupted)")
	fs.Int64Var(&o.stepEvery, "step-every", 100, "steps between saves")
	fs.Int64Var(&o.startStep, "start-step", 0, "step of the first save (default: step-every)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.dir == "":
		return o, errors.New("--dir is required")
	case o.layout != "keras" && o.layout != "hf":
		return o, fmt.Errorf("--layout %q: want keras or hf", o.layout)
	case o.interval <= 0:
		return o, fmt.Errorf("--interval %s: must be positive", o.interval)
	case o.stepEvery <= 0:
		return o, fmt.Errorf("--step-every %d: must be positive", o.stepEvery)
	}
	var err error
	if o.size, err = checkpoint.ParseBytes(*size); err != nil {
		return o, fmt.Errorf("--size: %w", err)
	}
	if o.layout == "hf" && o.size < hfSmallest {
		return o, fmt.Errorf("--size %d: a Hugging Face checkpoint here is at least %d bytes", o.size, hfSmallest)
	}
	if o.startStep == 0 {
		o.startStep = o.stepEvery
	}
	return o, nil
}

// train saves until o.saves saves are done or ctx ends, and counts the
// failures: a save that fails is logged and the job goes on, as a training
// loop that catches the error would.
func train(ctx context.Context, o options, log io.Writer) summary {
	sum := summary{Errors: []string{}}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + 1)
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	step := o.startStep
	for n := 0; o.saves == 0 || n < o.saves; n++ {
		var err error
		if o.layout == "hf" {
			err = saveHF(o.dir, step, o.size, chunk)
		} else {
			err = writeFile(filepath.Join(o.dir, fmt.Sprintf("checkpoint_step_%d.keras", step)), o.size, chunk)
		}
		sum.Saves++
		sum.LastStep = step
		now := time.Now().Format(time.TimeOnly)
		if err != nil {
			sum.Failed++
			if errors.Is(err, syscall.ENOSPC) {
				sum.ENOSPC++
			}
			if len(sum.Errors) < 20 {
				sum.Errors = append(sum.Errors, err.Error())
			}
			fmt.Fprintf(log, "%s step %d: save FAILED: %v\n", now, step, err)
		} else {
			fmt.Fprintf(log, "%s step %d: saved %d bytes\n", now, step, o.size)
		}
		step += o.stepEvery
		if n+1 == o.saves {
			break // no need to wait after the last save
		}
		select {
		case <-ctx.Done():
			return sum
		case <-tick.C:
		}
	}
	return sum
}

// hfSmallest is the smallest size saveHF can split into its files.
const hfSmallest = 8 << 10

// saveHF writes a checkpoint the way transformers does: into
// tmp-checkpoint-N/, renamed to checkpoint-N/ once complete.
func saveHF(dir string, step int64, size uint64, chunk []byte) error {
	tmp := filepath.Join(dir, fmt.Sprintf("tmp-checkpoint-%d", step))
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	model := size * 6 / 10
	parts := []struct {
		name string
		size uint64
	}{
		{"model.safetensors", model},
		{"optimizer.pt", size - model - 4096},
		{"scheduler.pt", 1024},
		{"rng_state.pth", 1024},
	}
	for _, p := range parts {
		if err := writeFile(filepath.Join(tmp, p.name), p.size, chunk); err != nil {
			return err
		}
	}
	state := fmt.Sprintf(`{"global_step": %d, "best_model_checkpoint": null, "log_history": []}`, step)
	if err := os.WriteFile(filepath.Join(tmp, "trainer_state.json"), []byte(state), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("checkpoint-%d", step)))
}

// writeFile writes size bytes of chunk's pattern to path.
func writeFile(path string, size uint64, chunk []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for left := size; left > 0; {
		n := min(left, uint64(len(chunk)))
		if _, err := f.Write(chunk[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}
