package dirfs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTreeWalk(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"top/a/deep", "top/skip/below"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"top/f1", "top/a/f2", "top/a/deep/f3", "top/skip/below/f4"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(root, "top/link")); err != nil {
		t.Fatal(err)
	}
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootfd)

	var tree Tree
	for round := range 2 { // the buffers are reused
		var seen []string
		err := tree.Walk(rootfd, []byte("top\x00"), func(fd int, nameZ []byte, typ byte, depth int) (bool, error) {
			name := string(nameZ[:len(nameZ)-1])
			seen = append(seen, name+"@"+string(rune('0'+depth)))
			return typ == unix.DT_DIR && name != "skip", nil
		}, func(nameZ []byte, depth int, err error) error { return err })
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(seen)
		want := []string{"a@0", "deep@1", "f1@0", "f2@1", "f3@2", "link@0", "skip@0"}
		if !slices.Equal(seen, want) {
			t.Errorf("round %d: visited %v, want %v (symlinks not followed, skip not entered)", round, seen, want)
		}
	}

	// A visit error stops the walk and is returned; a directory that cannot
	// be opened goes to onErr, which may go on.
	stop := errors.New("stop")
	if err := tree.Walk(rootfd, []byte("top\x00"), func(int, []byte, byte, int) (bool, error) { return false, stop }, nil); !errors.Is(err, stop) {
		t.Errorf("visit error: %v", err)
	}
	var missing int
	err = tree.Walk(rootfd, []byte("nothing\x00"), nil, func(nameZ []byte, depth int, err error) error {
		if errors.Is(err, unix.ENOENT) && depth == 0 && string(nameZ) == "nothing\x00" {
			missing++
		}
		return nil
	})
	if err != nil || missing != 1 {
		t.Errorf("missing directory: onErr called %d times, Walk returned %v", missing, err)
	}
}

func TestReadSmall(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"step": 5}`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "big"), make([]byte, 100), 0o644))
	must(os.Symlink("state.json", filepath.Join(dir, "link")))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(err)
	defer unix.Close(fd)
	for _, tc := range []struct {
		name, want string
		tooLarge   bool
	}{
		{"state.json", "", false},
		{"big", "", true},
		{"link", "open link", false},
		{"sub", "sub is a directory, not a regular file", false},
		{"fifo", "fifo is a named pipe, not a regular file", false},
		{"missing", "open missing", false},
	} {
		data, _, err := ReadSmall(fd, tc.name, 50)
		switch {
		case tc.name == "state.json":
			if err != nil || string(data) != `{"step": 5}` {
				t.Errorf("%s: %q, %v", tc.name, data, err)
			}
		case tc.tooLarge:
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s: %v, want ErrTooLarge", tc.name, err)
			}
		case err == nil || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
