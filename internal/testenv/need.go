package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/checkpoint-exporter/checkpoint_exporter/deps"
)

// Need returns where item of deps/debian.txt is: the path of a command
// ("promtool"), the file itself ("/usr/sbin/sshd"), or Debian's python3 for a
// module ("python3:torch"). If it is missing the test fails, on any machine,
// naming the Debian package and `make deps`: a test that needs a tool never
// skips. An item that is not in the list fails too: add it there first.
func Need(t testing.TB, item string) string {
	t.Helper()
	if _, ok := deps.Provider(item); !ok {
		t.Fatalf("testenv.Need(%q): not in %s; add it under the Debian package that provides it", item, deps.File)
	}
	path, err := find(item)
	if err != nil {
		t.Fatalf("%s%s", deps.NotFound(item), detail(err))
	}
	return path
}

// errAbsent is find's error for an item simply not there; other errors
// (a module that is there but fails to import) are shown to the reader.
var errAbsent = fmt.Errorf("absent")

func detail(err error) string {
	if err == errAbsent {
		return ""
	}
	return fmt.Sprintf(" (%v)", err)
}

func find(item string) (string, error) {
	if m, ok := strings.CutPrefix(item, deps.PythonPrefix); ok {
		return deps.Python, importPython(m)
	}
	if strings.HasPrefix(item, "/") {
		if _, err := os.Stat(item); err != nil {
			return "", errAbsent
		}
		return item, nil
	}
	p, err := exec.LookPath(item)
	if err != nil {
		return "", errAbsent
	}
	return p, nil
}

var imported sync.Map // module name -> error of importing it (nil once it worked)

// importPython imports module with Debian's python3, once a process: importing
// torch takes seconds.
func importPython(module string) error {
	if v, ok := imported.Load(module); ok {
		err, _ := v.(error)
		return err
	}
	err := func() error {
		if _, err := os.Stat(deps.Python); err != nil {
			return errAbsent
		}
		out, err := exec.Command(deps.Python, "-c", "import "+module).CombinedOutput()
		if err == nil {
			return nil
		}
		if bytes.Contains(out, []byte("No module named '"+module+"'")) {
			return errAbsent
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("%s -c 'import %s': %v: %s", deps.Python, module, err, lines[len(lines)-1])
	}()
	imported.Store(module, err)
	return err
}
