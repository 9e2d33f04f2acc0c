// Package docs checks docs/architecture.md against the code: every test it
// names exists, and every package imports only what its row of the package
// table allows, so the map cannot drift from the territory unnoticed.
package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/checkpoint-exporter/checkpoint_exporter/"

func architecture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testNames returns the names of every Test function in the repository.
func testNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../.." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
				names[fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestNamedTestsExist(t *testing.T) {
	doc := architecture(t)
	have := testNames(t)
	named := regexp.MustCompile("`(Test[A-Za-z0-9_]+)`").FindAllStringSubmatch(doc, -1)
	if len(named) < 40 {
		t.Fatalf("only %d tests named in docs/architecture.md", len(named))
	}
	for _, m := range named {
		if !have[m[1]] {
			t.Errorf("docs/architecture.md names %s, which no _test.go file defines", m[1])
		}
	}
}

// allowed reads the package table: package → the packages of this module it
// may import ("everything below" for cmd).
func allowed(t *testing.T) (map[string][]string, []string) {
	t.Helper()
	row := regexp.MustCompile("(?m)^\\| `([a-z_/]+)` \\| .* \\| ([^|]+) \\|$")
	pkg := regexp.MustCompile("`([a-z_/]+)`")
	out := map[string][]string{}
	var order []string
	for _, m := range row.FindAllStringSubmatch(architecture(t), -1) {
		var may []string
		for _, p := range pkg.FindAllStringSubmatch(m[2], -1) {
			may = append(may, p[1])
		}
		if strings.TrimSpace(m[2]) == "everything below" {
			may = []string{"*"}
		}
		out[m[1]] = may
		order = append(order, m[1])
	}
	return out, order
}

func TestImportsFollowTheTable(t *testing.T) {
	table, order := allowed(t)
	if len(table) < 15 {
		t.Fatalf("only %d rows in the package table", len(table))
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		self := strings.TrimPrefix(fields[0]+"/", module)
		self = strings.TrimSuffix(self, "/")
		listed[self] = true
		may, ok := table[self]
		if !ok {
			if !strings.HasPrefix(self, "test/") && !strings.HasPrefix(self, "bench/") && !slices.Contains([]string{"", "internal/testenv", "internal/fixture", "internal/hangfs", "internal/netfs", "deps", "dashboards", "dashboards/gen"}, self) {
				t.Errorf("package %s is not in docs/architecture.md's table", self)
			}
			continue
		}
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours || slices.Contains(may, "*") || slices.Contains(may, dep) {
				continue
			}
			t.Errorf("%s imports %s; docs/architecture.md allows %v", self, dep, may)
		}
	}
	// "everything below": cmd's row is first; the rest must exist.
	for _, p := range order {
		if !listed[p] {
			t.Errorf("docs/architecture.md lists %s, which is not a package", p)
		}
	}
}
