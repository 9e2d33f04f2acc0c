package config

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recorder is a subscriber that notes what it was asked and committed.
type recorder struct {
	name   string
	refuse error
	log    *[]string
}

func (r recorder) sub(cfg *Config) (func(), error) {
	*r.log = append(*r.log, r.name+" checks "+cfg.Targets[0].Name)
	if r.refuse != nil {
		return nil, r.refuse
	}
	return func() { *r.log = append(*r.log, r.name+" commits "+cfg.Targets[0].Name) }, nil
}

func loader(name *string, err *error) func() (*Config, error) {
	return func() (*Config, error) {
		if *err != nil {
			return nil, *err
		}
		return &Config{Targets: []Target{{Name: *name}}}, nil
	}
}

func TestCoordinatorAllOrNothing(t *testing.T) {
	refused := errors.New("no authentication")
	badFile := errors.New("c.yml: line 3: unknown key")
	for _, tc := range []struct {
		name    string
		loadErr error
		refuse  []error // per subscriber
		want    []string
		wantErr error
	}{
		{"all accept: checks, then commits in order", nil, []error{nil, nil, nil},
			[]string{"s0 checks x", "s1 checks x", "s2 checks x", "s0 commits x", "s1 commits x", "s2 commits x"}, nil},
		{"the last refuses: nothing commits", nil, []error{nil, nil, refused},
			[]string{"s0 checks x", "s1 checks x", "s2 checks x"}, refused},
		{"the first refuses: the others are not asked", nil, []error{refused, nil, nil},
			[]string{"s0 checks x"}, refused},
		{"the file does not load: nobody is asked", badFile, []error{nil, nil}, nil, badFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			name, loadErr := "x", tc.loadErr
			c := NewCoordinator(log.NewNopLogger(), loader(&name, &loadErr), reg)
			c.Started()
			var got []string
			for i, e := range tc.refuse {
				c.Subscribe(recorder{name: fmt.Sprintf("s%d", i), refuse: e, log: &got}.sub)
			}
			err := c.Reload()
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Reload: %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("calls:\n got %q\nwant %q", got, tc.want)
			}
			wantOK := 1.0
			if tc.wantErr != nil {
				wantOK = 0
			}
			if v := testutil.ToFloat64(c.success); v != wantOK {
				t.Errorf("last_reload_successful = %v, want %v", v, wantOK)
			}
			if testutil.ToFloat64(c.successTime) == 0 {
				t.Error("no success timestamp after start-up")
			}
			// The next good reload succeeds again.
			loadErr = nil
			got = nil
			for i := range c.subs {
				c.subs[i] = recorder{name: fmt.Sprintf("s%d", i), log: &got}.sub
			}
			if err := c.Reload(); err != nil || testutil.ToFloat64(c.success) != 1 {
				t.Errorf("good reload after: %v", err)
			}
		})
	}
}

// Concurrent reloads (SIGHUP and POST /-/reload at once) never interleave:
// one reload's checks and commits all happen before the next one's begin.
func TestCoordinatorSerialisesReloads(t *testing.T) {
	var inside atomic.Int32
	var overlaps atomic.Int32
	enter := func() {
		if inside.Add(1) != 1 {
			overlaps.Add(1)
		}
	}
	c := NewCoordinator(log.NewNopLogger(), func() (*Config, error) { return &Config{}, nil }, prometheus.NewRegistry())
	c.Subscribe(func(*Config) (func(), error) {
		enter()
		return nil, nil
	}, func(*Config) (func(), error) {
		return func() { inside.Add(-1) }, nil
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if err := c.Reload(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d reloads overlapped", n)
	}
}
