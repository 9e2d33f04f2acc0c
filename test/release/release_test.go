//go:build release

// Package release checks what an operator downloads: `make release` builds
// static linux/amd64 and linux/arm64 tarballs whose checksums verify and whose
// amd64 binary runs, and the Dockerfile builds an image offline (buildah) that
// runs with runc against a bind-mounted checkpoint directory.
package release

import (
	"archive/tar"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var (
	repo    string // repository root
	dist    string // make release's output
	version string // contents of VERSION
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// setup builds the release once for every test.
func setup(m *testing.M) (int, error) {
	var err error
	if repo, err = filepath.Abs("../.."); err != nil {
		return 0, err
	}
	v, err := os.ReadFile(filepath.Join(repo, "VERSION"))
	if err != nil {
		return 0, err
	}
	version = strings.TrimSpace(string(v))
	tmp, err := os.MkdirTemp("", "release-test")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	dist = filepath.Join(tmp, "dist")
	cmd := exec.Command("make", "release", "DIST="+dist)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("make release: %w\n%s", err, out)
	}
	return m.Run(), nil
}

func TestChecksums(t *testing.T) {
	want := []string{tarball("amd64"), tarball("arm64")}
	data, err := os.ReadFile(filepath.Join(dist, "sha256sums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || len(f[0]) != 64 {
			t.Fatalf("sha256sums.txt: malformed line %q", line)
		}
		listed = append(listed, f[1])
	}
	sort.Strings(listed)
	if strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Fatalf("sha256sums.txt lists %v, want %v", listed, want)
	}
	cmd := exec.Command("sha256sum", "-c", "sha256sums.txt")
	cmd.Dir = dist
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
}

func TestTarballs(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		machine elf.Machine
	}{
		{"amd64", elf.EM_X86_64},
		{"arm64", elf.EM_AARCH64},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			dir := t.TempDir()
			names := untar(t, filepath.Join(dist, tarball(tc.arch)), dir)
			top := strings.TrimSuffix(tarball(tc.arch), ".tar.gz")
			for _, f := range []string{"checkpoint_exporter", "README.md", "README.zh-CN.md", "LICENSE",
				"examples/checkpoint_exporter.yml", "examples/checkpoint_exporter.service"} {
				if !names[top+"/"+f] {
					t.Errorf("%s lacks %s/%s", tarball(tc.arch), top, f)
				}
			}
			for n := range names {
				if n != top && !strings.HasPrefix(n, top+"/") {
					t.Errorf("%s: entry %q outside %s/", tarball(tc.arch), n, top)
				}
			}
			bin := filepath.Join(dir, top, "checkpoint_exporter")
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != tc.machine {
				t.Errorf("binary is for %v, want %v", f.Machine, tc.machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("binary is dynamically linked (program header %v): want static, CGO_ENABLED=0", p.Type)
				}
			}
			if tc.arch != "amd64" {
				return
			}
			out, err := exec.Command(bin, "--version").CombinedOutput()
			want := "checkpoint_exporter, version " + version + " "
			if err != nil || !strings.HasPrefix(string(out), want) {
				t.Fatalf("%s --version: %v\n%s\nwant a first line starting %q", bin, err, out, want)
			}
		})
	}
}

func tarball(arch string) string {
	return fmt.Sprintf("checkpoint_exporter-%s.linux-%s.tar.gz", version, arch)
}

// untar extracts a tarball into dir and returns the names of its entries.
func untar(t *testing.T, file, dir string) map[string]bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		names[name] = true
		if !filepath.IsLocal(name) {
			t.Fatalf("%s: entry %q leaves the extraction directory", file, h.Name)
		}
		path := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("%s: entry %q has type %c, want only files and directories", file, h.Name, h.Typeflag)
		}
	}
}
