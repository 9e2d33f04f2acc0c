package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Defaults of Options.
const (
	DefaultMaxBytes     = 10 << 20
	DefaultKeep         = 100
	DefaultWriteTimeout = 10 * time.Second
)

// Options configure a Store.
type Options struct {
	// MaxBytes is the file size past which it is rotated: FILE is renamed
	// FILE.1 (replacing the one before) and a new FILE begun. 0:
	// DefaultMaxBytes.
	MaxBytes int64
	// Keep is how many runs of each target are kept in memory (0:
	// DefaultKeep).
	Keep int
	// WriteTimeout is how long Record waits for the file (a hung network
	// mount) before it reports an error and returns; the write goes on
	// meanwhile, and the run stays in memory. 0: DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger gets the warnings: lines skipped when reading back.
	Logger log.Logger
}

// Store is the deletion history: the last runs of every target in memory
// and, when it has a file, every run appended to it. It is safe for
// concurrent use.
type Store struct {
	path string // "" for a store in memory only
	opts Options

	mu     sync.Mutex // guards runs and seq
	runs   map[string][]Run
	seq    uint64
	prefix string // of IDs: this process's start time and pid

	// slot is held by the one file write going on (a token in the
	// channel), so a write stuck on a hung filesystem never piles others
	// up behind it.
	slot chan struct{}
	file *os.File // guarded by slot
	// written is the file's size as last known (guarded by slot).
	written int64
}

// New returns a store that keeps the history in memory only (no
// --prune.history-file): it is gone at restart.
func New(opts Options) *Store {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	now := time.Now()
	return &Store{opts: opts, runs: map[string][]Run{}, slot: make(chan struct{}, 1),
		prefix: strconv.FormatInt(now.UnixMilli(), 36) + "-" + strconv.Itoa(os.Getpid())}
}

// Open returns a store that appends to the file at path (created if
// missing) and reads back what it and its rotated predecessor hold: lines
// that cannot be parsed (a crash cut the last one short) are skipped with a
// warning. A file that cannot be opened because its filesystem is full is
// no error: the store warns, keeps the history in memory and tries again at
// the next record, since a full disk is when prunes matter most. Any other
// failure (no such directory, a directory at path, no permission) is.
func Open(path string, opts Options) (*Store, error) {
	s := New(opts)
	s.path = path
	runs, err := ReadFile(path, func(err error) {
		level.Warn(s.opts.Logger).Log("msg", "history: skipping a line that cannot be read", "err", err)
	})
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		s.remember(r)
	}
	if err := s.open(); err != nil {
		if !full(err) {
			return nil, err
		}
		level.Warn(s.opts.Logger).Log("msg", "history file cannot be created on a full filesystem; runs are kept in memory until it can", "path", path, "err", err)
	}
	return s, nil
}

// full reports whether err says the filesystem has no room.
func full(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Path is the history file ("" without one).
func (s *Store) Path() string { return s.path }

// open opens the file for appending, ending a line a crash cut short with
// a newline so the next record starts on its own line; the slot is held
// (or the store not yet shared).
func (s *Store) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open history file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open history file: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("history file %s is not a regular file", s.path)
	}
	s.file, s.written = f, st.Size()
	if st.Size() > 0 {
		last := make([]byte, 1)
		if r, err := os.Open(s.path); err == nil {
			_, err = r.ReadAt(last, st.Size()-1)
			r.Close()
			if err == nil && last[0] != '\n' {
				if n, err := f.Write([]byte{'\n'}); err == nil {
					s.written += int64(n)
				}
			}
		}
	}
	return nil
}

// Record adds a finished run to the history and, with a file, appends it
// and waits for the fsync. The run is kept in memory whatever happens to the
// file; an error says the file did not get it (full disk, hung mount: the
// caller logs it and goes on). r.ID and a zero r.Time are set here.
func (s *Store) Record(ctx context.Context, r Run) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if r.Deleted == nil {
		r.Deleted = []Item{}
	}
	s.mu.Lock()
	s.seq++
	r.ID = s.prefix + "-" + strconv.FormatUint(s.seq, 10)
	s.mu.Unlock()
	s.remember(r)
	if s.path == "" {
		return nil
	}
	var buf bytes.Buffer
	if err := encode(&buf, r); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	timer := time.NewTimer(s.opts.WriteTimeout)
	defer timer.Stop()
	select {
	case s.slot <- struct{}{}:
	case <-timer.C:
		return fmt.Errorf("history file %s: an earlier write has not finished in %v (hung filesystem?); run kept in memory", s.path, s.opts.WriteTimeout)
	case <-ctx.Done():
		return fmt.Errorf("history file %s: %w", s.path, ctx.Err())
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-s.slot }()
		done <- s.append(buf.Bytes())
	}()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("history file %s: write not finished in %v (hung filesystem?); run kept in memory", s.path, s.opts.WriteTimeout)
	case <-ctx.Done():
		return fmt.Errorf("history file %s: %w", s.path, ctx.Err())
	}
}

// append writes one run's records and fsyncs them, rotating first when the
// file would grow past MaxBytes; the slot is held.
func (s *Store) append(b []byte) error {
	if err := s.reopenIfMoved(); err != nil {
		return err
	}
	if s.written > 0 && s.written+int64(len(b)) > s.opts.MaxBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.file.Write(b)
	if err == nil {
		err = s.file.Sync()
	}
	if err != nil {
		// A part of the run must not stay as the start of a line the
		// next run's records would continue.
		if n > 0 {
			s.file.Truncate(s.written)
		}
		return fmt.Errorf("append to history file: %w", err)
	}
	s.written += int64(n)
	return nil
}

// reopenIfMoved opens the file again when it is not open (it could not be
// created) or when path no longer names it (another process, a prune
// command, rotated it).
func (s *Store) reopenIfMoved() error {
	if s.file != nil {
		cur, err1 := os.Stat(s.path)
		open, err2 := s.file.Stat()
		if err1 == nil && err2 == nil && os.SameFile(cur, open) {
			s.written = open.Size()
			return nil
		}
		s.file.Close()
		s.file = nil
	}
	return s.open()
}

// rotate renames the file to FILE.1 and starts a new one.
func (s *Store) rotate() error {
	if err := os.Rename(s.path, rotated(s.path)); err != nil {
		return fmt.Errorf("rotate history file: %w", err)
	}
	s.file.Close()
	s.file = nil
	if err := s.open(); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// remember keeps r among its target's last runs.
func (s *Store) remember(r Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := append(s.runs[r.Target], r)
	if len(rs) > s.opts.Keep {
		rs = slices.Delete(rs, 0, len(rs)-s.opts.Keep)
	}
	s.runs[r.Target] = rs
}

// Runs returns up to n of the last runs of target (every target if ""),
// newest first.
func (s *Store) Runs(target string, n int) []Run {
	s.mu.Lock()
	var out []Run
	if target != "" {
		out = slices.Clone(s.runs[target])
	} else {
		for _, rs := range s.runs {
			out = append(out, rs...)
		}
	}
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Run) int { return b.Time.Compare(a.Time) })
	if n >= 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// Close closes the file once no write is going on; it gives up after
// WriteTimeout if one hangs, leaving the file to the process's exit.
func (s *Store) Close() error {
	select {
	case s.slot <- struct{}{}:
	case <-time.After(s.opts.WriteTimeout):
		return fmt.Errorf("history file %s: a write has not finished in %v; not closed", s.path, s.opts.WriteTimeout)
	}
	defer func() { <-s.slot }()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}
