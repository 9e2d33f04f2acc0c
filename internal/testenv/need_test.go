package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/deps"
)

// fatalT records the first Fatalf and stops the goroutine, as testing.T does.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// need runs Need on a fatalT and returns its result and its failure.
func need(t *testing.T, item string) (path, failure string) {
	f := &fatalT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		path = Need(f, item)
	}()
	<-done
	return path, f.msg
}

func TestNeedNamesThePackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct{ item, want string }{
		{"promtool", "promtool not found: install Debian package prometheus (make deps)"},
		{"amtool", "amtool not found: install Debian package prometheus-alertmanager (make deps)"},
		{"no-such-tool", "testenv.Need(\"no-such-tool\"): not in deps/debian.txt"},
	} {
		if _, got := need(t, tc.item); !strings.HasPrefix(got, tc.want) {
			t.Errorf("Need(%q) on an empty PATH failed with %q, want %q", tc.item, got, tc.want)
		}
	}
}

// A module is Debian's python3's: the first python3 on PATH (a pyenv here)
// may lack it.
func TestNeedPythonModuleUsesDebiansPython(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if got := Need(t, "python3:torch"); got != deps.Python {
		t.Errorf("Need(python3:torch) = %q, want %q", got, deps.Python)
	}
	if err := importPython("no_such_module_here"); err != errAbsent {
		t.Errorf("importing a module that does not exist: %v, want errAbsent", err)
	}
}

func TestNeedFindsCommandsAndFiles(t *testing.T) {
	if got := Need(t, "sh"); !strings.HasSuffix(got, "/sh") {
		t.Errorf("Need(sh) = %q", got)
	}
	if got := Need(t, "/usr/sbin/sshd"); got != "/usr/sbin/sshd" {
		t.Errorf("Need(/usr/sbin/sshd) = %q", got)
	}
}
