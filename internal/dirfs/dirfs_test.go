package dirfs

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// More entries than one BufSize batch holds, with long names, so the
// batching and the NUL handling are both exercised.
func TestReadDirentsAndUnlinkAt(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 2000 {
		name := fmt.Sprintf("%s-%04d", strings.Repeat("x", 60), i)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	want = append(want, "sub")
	root, err := OpenDirAt(unix.AT_FDCWD, append([]byte(dir), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	var got []string
	types := map[string]byte{}
	err = ReadDirents(root, make([]byte, BufSize), func(nameZ []byte, typ byte) bool {
		if nameZ[len(nameZ)-1] != 0 {
			t.Fatalf("%q is not NUL-terminated", nameZ)
		}
		got = append(got, strings.Clone(Name(nameZ)))
		types[Name(nameZ)] = typ
		var st unix.Stat_t
		if err := LstatAt(root, nameZ, &st); err != nil {
			t.Errorf("LstatAt %s: %v", Name(nameZ), err)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("ReadDirents listed %d names, want %d (no . or ..)", len(got), len(want))
	}
	if err := UnlinkAt(root, []byte("sub\x00"), 0); !errors.Is(err, unix.EISDIR) {
		t.Errorf("unlink of a directory without AT_REMOVEDIR: %v, want EISDIR", err)
	}
	if err := UnlinkAt(root, []byte("sub\x00"), unix.AT_REMOVEDIR); err != nil {
		t.Errorf("rmdir: %v", err)
	}
	if err := UnlinkAt(root, []byte("sub\x00"), unix.AT_REMOVEDIR); !errors.Is(err, unix.ENOENT) {
		t.Errorf("second rmdir: %v, want ENOENT", err)
	}
	if _, err := OpenDirAt(root, append([]byte(want[len(want)-1]), 0)); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("OpenDirAt of a file: %v, want ENOTDIR", err)
	}
}

// TestNoRawSyscalls keeps the module free of raw system calls: a raw call
// that blocks on a hung network filesystem keeps its P, and the next garbage
// collection then stops the whole process until the server answers.
func TestNoRawSyscalls(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "vendor" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "RawSyscall") {
				t.Errorf("%s uses %s: use the blocking-aware unix.Syscall", path, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
