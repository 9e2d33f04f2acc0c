package offload

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

// Config is one target's offload: Command (with Timeout and Concurrency) or
// Marker.
type Config struct {
	// Command is an argv with placeholders {path}, {name}, {step}, {target};
	// it is run once per top-level entry of a checkpoint.
	Command     []string
	Timeout     time.Duration
	Concurrency int
	// Marker is a file name inside (or beside, as <name><marker>) a
	// checkpoint that the operator's own sync job writes once it is copied.
	Marker string
	// RetryAfter is how long a checkpoint whose offload failed waits before
	// it is tried again, doubled per failure up to maxRetryAfter (default 1m).
	RetryAfter time.Duration
}

const maxRetryAfter = time.Hour

// Offloader offloads the checkpoints of one target and says which are
// confirmed offloaded. Scanned queues the settled checkpoints of each new
// scan that are not yet offloaded; Run's workers copy them, oldest first,
// at most Concurrency at a time. It is safe for concurrent use.
type Offloader struct {
	logger  log.Logger
	target  checkpoint.Target
	cfg     Config
	metrics *Metrics
	now     func() time.Time
	wake    chan struct{}

	saveMu sync.Mutex // serialises writes of the state file

	mu       sync.Mutex // guards the fields below; never held across a command or a walk
	records  map[string]Record
	read     stamp // of the state file when last read or written
	queue    []checkpoint.Checkpoint
	running  map[string]bool
	failures map[string]failure
	markers  map[string]markerResult
	live     map[string]bool // keys of the checkpoints of the latest scan, nil before one
	pending  map[string]bool // keys of its settled checkpoints not confirmed offloaded
}

// failure is a checkpoint whose last offload failed.
type failure struct {
	n     int
	until time.Time
	err   string
}

// New returns the offloader of target t, with the state its directory's
// state file holds. metrics may be nil.
func New(logger log.Logger, t checkpoint.Target, cfg Config, metrics *Metrics) *Offloader {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Minute
	}
	if abs, err := filepath.Abs(t.Path); err == nil {
		t.Path = abs // {path} is absolute, whatever the working directory
	}
	o := &Offloader{logger: log.With(logger, "target", t.Name), target: t, cfg: cfg, metrics: metrics, now: time.Now,
		wake: make(chan struct{}, 1), records: map[string]Record{}, running: map[string]bool{},
		failures: map[string]failure{}, markers: map[string]markerResult{}}
	o.refresh()
	return o
}

func (o *Offloader) statePath() string { return filepath.Join(o.target.Path, StateFile) }

// refresh reads the state file again if it changed since it was last read
// (a second exporter on the same directory, or this one before a restart).
func (o *Offloader) refresh() {
	if o.cfg.Marker != "" {
		return
	}
	st, ok := stampOf(o.statePath())
	o.mu.Lock()
	same := ok && st == o.read
	o.mu.Unlock()
	if same || !ok {
		return
	}
	recs, err := readState(o.statePath())
	if err != nil {
		level.Warn(o.logger).Log("msg", "offload state not readable; checkpoints it lists will be offloaded again", "err", err)
		return
	}
	o.mu.Lock()
	o.records = merge(o.records, recs)
	o.read = st
	o.mu.Unlock()
}

// settled: complete and older than min_age, so no longer being written.
func (o *Offloader) settled(c checkpoint.Checkpoint, now time.Time) bool {
	return !c.Incomplete && now.Sub(c.ModTime) >= o.target.MinAge
}

// Confirmed says which checkpoints of snap are confirmed offloaded: a record
// made with the configured command whose identity is the one scanned now,
// or a marker no older than the checkpoint's newest file. It implements
// pruner.Confirmer.
func (o *Offloader) Confirmed(ctx context.Context, snap *checkpoint.Snapshot) func(checkpoint.Checkpoint) bool {
	if o.cfg.Marker != "" {
		marked := o.checkMarkers(ctx, snap)
		return func(c checkpoint.Checkpoint) bool { return marked[key(c)] }
	}
	o.refresh()
	o.mu.Lock()
	recs := make(map[string]Record, len(o.records))
	for k, r := range o.records {
		recs[k] = r
	}
	o.mu.Unlock()
	return func(c checkpoint.Checkpoint) bool {
		r, ok := recs[key(c)]
		return ok && r.sameCommand(o.cfg.Command) && r.matches(c)
	}
}

// Scanned takes a new scan of the target: it counts the settled checkpoints
// not yet offloaded and queues them for the workers, oldest step first. It
// does not wait for any copy.
func (o *Offloader) Scanned(ctx context.Context, snap *checkpoint.Snapshot) {
	if !snap.Up() || snap.Target.Name != o.target.Name {
		return
	}
	confirmed := o.Confirmed(ctx, snap)
	now := o.now()
	var queue []checkpoint.Checkpoint
	o.mu.Lock()
	o.live, o.pending = map[string]bool{}, map[string]bool{}
	for _, c := range snap.Checkpoints {
		k := key(c)
		o.live[k] = true
		if !o.settled(c, now) || confirmed(c) {
			continue
		}
		o.pending[k] = true
		if f, ok := o.failures[k]; (ok && now.Before(f.until)) || o.running[k] {
			continue
		}
		queue = append(queue, c)
	}
	for k := range o.failures {
		if !o.live[k] {
			delete(o.failures, k)
		}
	}
	if o.cfg.Marker == "" {
		o.queue = queue
	}
	// Set under the lock: gauge writes from concurrent callers land in the
	// order of the state they describe.
	o.metrics.setPending(o.target.Name, len(o.pending))
	o.mu.Unlock()
	if len(queue) > 0 && o.cfg.Marker == "" {
		o.signal()
	}
}

func (o *Offloader) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run runs the workers until ctx ends. With require_marker there is nothing
// to run: the operator's job copies.
func (o *Offloader) Run(ctx context.Context) {
	if o.cfg.Marker != "" {
		return
	}
	var wg sync.WaitGroup
	for range o.cfg.Concurrency {
		wg.Go(func() {
			for {
				c, ok := o.next()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-o.wake:
						continue
					}
				}
				o.offload(ctx, c)
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// next takes the oldest queued checkpoint and marks it running.
func (o *Offloader) next() (checkpoint.Checkpoint, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.queue) > 0 {
		c := o.queue[0]
		o.queue = o.queue[1:]
		if o.running[key(c)] {
			continue
		}
		o.running[key(c)] = true
		if len(o.queue) > 0 {
			o.signal() // another worker may take the next one
		}
		return c, true
	}
	return checkpoint.Checkpoint{}, false
}

// offload copies c with the command, then records it if c did not change
// while it was copied.
func (o *Offloader) offload(ctx context.Context, c checkpoint.Checkpoint) {
	start := o.now()
	out := &tail{}
	result, err := o.copy(ctx, c, out)
	d := o.now().Sub(start)
	k := key(c)
	logger := log.With(o.logger, "name", c.Name, "step", c.Step, "bytes", c.Bytes, "duration", d, "output", out.String())
	o.mu.Lock()
	delete(o.running, k)
	if result == ResultOK {
		delete(o.failures, k)
		delete(o.pending, k)
		o.records[k] = recordOf(c, o.now(), d, o.cfg.Command)
	} else {
		f := o.failures[k]
		f.n++
		f.err = err.Error()
		f.until = o.now().Add(min(o.cfg.RetryAfter<<min(f.n-1, 20), maxRetryAfter))
		o.failures[k] = f
	}
	// Under the lock, so that two workers finishing at once cannot leave
	// the gauge at the count of the one that computed first, and before the
	// run is counted, so that whoever sees the run sees its pending count.
	o.metrics.setPending(o.target.Name, len(o.pending))
	o.mu.Unlock()
	o.metrics.observe(o.target.Name, result, d, c.Bytes)
	if result != ResultOK {
		level.Warn(logger).Log("msg", "offload failed; the checkpoint is kept and tried again later", "result", result, "err", err)
		return
	}
	level.Info(logger).Log("msg", "offloaded checkpoint")
	if err := o.save(); err != nil {
		level.Error(logger).Log("msg", "offload not recorded in the state file: a restart offloads it again", "err", err)
	}
}

// copy runs the command for every entry of c, between two walks of c that
// must agree.
func (o *Offloader) copy(ctx context.Context, c checkpoint.Checkpoint, out *tail) (string, error) {
	before, err := fingerprint(o.target.Path, c, "")
	if err != nil {
		return changedOr(err)
	}
	for _, e := range c.Entries {
		argv := expand(o.cfg.Command, o.target, c, e)
		if err := run(ctx, o.target.Path, argv, o.cfg.Timeout, out); err != nil {
			var re *runError
			if errors.As(err, &re) {
				return re.result, err
			}
			return ResultError, err
		}
	}
	after, err := fingerprint(o.target.Path, c, "")
	if err != nil && !errors.Is(err, errChanged) {
		return ResultError, err
	}
	if err != nil || after != before {
		return ResultChanged, errors.New("checkpoint written to while it was copied")
	}
	return ResultOK, nil
}

func changedOr(err error) (string, error) {
	if errors.Is(err, errChanged) {
		return ResultChanged, err
	}
	return ResultError, err
}

// save writes the records to the state file, merged with what another
// exporter may have written there meanwhile, keeping only checkpoints that
// still exist.
func (o *Offloader) save() error {
	o.saveMu.Lock()
	defer o.saveMu.Unlock()
	disk, err := readState(o.statePath())
	if err != nil {
		disk = map[string]Record{} // unreadable: replaced by ours
	}
	o.mu.Lock()
	recs := merge(disk, o.records)
	if o.live != nil {
		for k := range recs {
			if !o.live[k] {
				delete(recs, k)
			}
		}
	}
	o.mu.Unlock()
	if err := writeState(o.target.Path, o.target.Name, recs); err != nil {
		return err
	}
	st, _ := stampOf(o.statePath())
	o.mu.Lock()
	o.records = merge(o.records, recs)
	o.read = st
	o.mu.Unlock()
	return nil
}
