package deps

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// coreutils are the coreutils commands put on the bare PATH: what a minimal
// Debian root filesystem has besides a shell.
var coreutils = []string{
	"[", "basename", "cat", "chmod", "cp", "cut", "date", "dirname", "du", "echo", "env",
	"false", "head", "id", "ln", "ls", "mkdir", "mktemp", "mv", "printf", "readlink",
	"rm", "sha256sum", "sleep", "sort", "stat", "tail", "tee", "test", "touch", "tr",
	"true", "uname", "uniq", "wc", "whoami",
}

// cleanCopy copies what make deps and make check-deps read (the Makefile,
// VERSION, deps/) to a fresh directory that any user can read: a clone with
// nothing built, no Go cache, no git.
func cleanCopy(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	// Up to, not including, the temporary directory itself (world-writable
	// and sticky, and must stay so).
	for p := root; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	for _, f := range []string{"Makefile", "VERSION", "deps/debian.txt", "deps/deps.sh"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestMakeTestOnABarePATHStopsFirst runs make test with PATH reduced to go,
// make, sh and coreutils, as on a fresh machine with only Go: it stops at once,
// naming every missing command and make deps, and no go command (gofmt, vet,
// the tests) ever starts.
func TestMakeTestOnABarePATHStopsFirst(t *testing.T) {
	repo := cleanCopy(t)
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	link := func(name string) {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err) // the machine running this test has them
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("make")
	link("sh")
	for _, c := range coreutils {
		link(c)
	}
	// go is a script that records each call and refuses to build or test.
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(t.TempDir(), "go-calls")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >>%q\ncase $1 in version|env) exec %q \"$@\" ;; esac\necho \"go $1 started despite missing dependencies\" >&2\nexit 97\n", calls, realGo)
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(filepath.Join(bin, "make"), "test")
	cmd.Dir = repo
	cmd.Env = []string{"PATH=" + bin, "HOME=" + t.TempDir(), "LANG=C"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("make test on a bare PATH: %v, want it to fail\n%s", err, out)
	}
	for _, c := range commandItems() {
		if _, err := os.Stat(filepath.Join(bin, c)); err == nil {
			if bytes.Contains(out, []byte("  "+c+": ")) {
				t.Errorf("%s is on the PATH but was named missing:\n%s", c, out)
			}
			continue
		}
		pkg, _ := Provider(c)
		if want := fmt.Sprintf("  %s: Debian package %s\n", c, pkg); !bytes.Contains(out, []byte(want)) {
			t.Errorf("make test on a bare PATH does not say %q:\n%s", want, out)
		}
	}
	if !bytes.Contains(out, []byte("sudo make deps")) {
		t.Errorf("make test on a bare PATH does not point at make deps:\n%s", out)
	}
	if b, err := os.ReadFile(calls); err == nil {
		t.Errorf("make test ran go before it stopped:\n%s\n%s", b, out)
	}
	if bytes.Contains(out, []byte("gofmt")) || bytes.Contains(out, []byte("go vet")) {
		t.Errorf("make test went past the dependency check:\n%s", out)
	}
}

// nobody is a user that is not root, for make deps' refusal.
const nobody = 65534

// TestMakeDepsWithoutRootPrintsTheSudoLine: make deps run by a user who is
// not root installs nothing, prints the exact apt-get line to run with sudo
// and fails.
func TestMakeDepsWithoutRootPrintsTheSudoLine(t *testing.T) {
	repo := cleanCopy(t)
	cmd := exec.Command("make", "deps")
	cmd.Dir = repo
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("make deps without root: %v, want it to fail\n%s", err, out)
	}
	var pkgs []string
	for _, p := range Packages() {
		pkgs = append(pkgs, p.Name)
	}
	want := "sudo apt-get install -y --no-install-recommends " + strings.Join(pkgs, " ")
	if !hasLine(string(out), want) {
		t.Errorf("make deps without root does not print the line\n%s\ngot:\n%s", want, out)
	}
	if bytes.Contains(out, []byte("+ apt-get")) {
		t.Errorf("make deps without root ran apt-get:\n%s", out)
	}
}
