package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// simulateCmd is a stand-in training job for demos and end-to-end tests: it
// saves checkpoints at a steady rate, as Keras files or as Hugging Face
// checkpoint-N/ directories, and records every write error.
type simulateCmd struct {
	*common
	cmd       *kingpin.CmdClause
	dir       string
	layout    string
	size      string
	interval  time.Duration
	saves     int
	stepEvery int64
	startStep int64
}

func addSimulate(app *kingpin.Application, c *common) *simulateCmd {
	s := &simulateCmd{common: c}
	s.cmd = app.Command("simulate", "Simulated training job that saves checkpoints at a steady rate (for demos and tests).").Hidden()
	s.cmd.Flag("dir", "Directory to save into.").Required().StringVar(&s.dir)
	s.cmd.Flag("layout", "keras (checkpoint_step_N.keras) or hf (checkpoint-N/ directories).").Default("keras").EnumVar(&s.layout, "keras", "hf")
	s.cmd.Flag("size", "Size of one checkpoint.").Default("84MB").StringVar(&s.size)
	s.cmd.Flag("interval", "Time between saves.").Default("1s").DurationVar(&s.interval)
	s.cmd.Flag("saves", "Number of saves (0: until interrupted).").Default("0").IntVar(&s.saves)
	s.cmd.Flag("step-every", "Steps between saves.").Default("100").Int64Var(&s.stepEvery)
	s.cmd.Flag("start-step", "Step of the first save (default: step-every).").Int64Var(&s.startStep)
	return s
}

// simulateSummary is printed as JSON when the job ends.
type simulateSummary struct {
	Saves    int      `json:"saves"`
	Failed   int      `json:"failed"`
	ENOSPC   int      `json:"enospc"`
	Errors   []string `json:"errors"`
	LastStep int64    `json:"last_step"`
}

func (s *simulateCmd) run(ctx context.Context) int {
	size, err := checkpoint.ParseBytes(s.size)
	if err != nil {
		fmt.Fprintln(s.stderr, err)
		return exitUsage
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		fmt.Fprintln(s.stderr, err)
		return exitError
	}
	step := s.startStep
	if step == 0 {
		step = s.stepEvery
	}
	sum := simulateSummary{Errors: []string{}}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + 1)
	}
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for n := 0; s.saves == 0 || n < s.saves; n++ {
		var err error
		if s.layout == "hf" {
			err = saveHF(s.dir, step, size, chunk)
		} else {
			err = writeFile(filepath.Join(s.dir, fmt.Sprintf("checkpoint_step_%d.keras", step)), size, chunk)
		}
		sum.Saves++
		sum.LastStep = step
		if err != nil {
			sum.Failed++
			if errors.Is(err, syscall.ENOSPC) {
				sum.ENOSPC++
			}
			if len(sum.Errors) < 20 {
				sum.Errors = append(sum.Errors, err.Error())
			}
			fmt.Fprintf(s.stderr, "%s step %d: save FAILED: %v\n", time.Now().Format(time.TimeOnly), step, err)
		} else {
			fmt.Fprintf(s.stderr, "%s step %d: saved %s\n", time.Now().Format(time.TimeOnly), step, formatBytes(int64(size)))
		}
		step += s.stepEvery
		if n+1 == s.saves {
			break // no need to wait after the last save
		}
		select {
		case <-ctx.Done():
			return s.finish(sum)
		case <-tick.C:
		}
	}
	return s.finish(sum)
}

// finish prints the summary the end-to-end test reads.
func (s *simulateCmd) finish(sum simulateSummary) int {
	enc := json.NewEncoder(s.stdout)
	_ = enc.Encode(sum)
	return exitOK
}

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
