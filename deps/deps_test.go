package deps

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is where the tests of this package find the repository: they run
// in deps/.
const repoRoot = ".."

// testCommand is the README's test command, which .ci/run runs.
const testCommand = "sudo make deps test"

func TestListParses(t *testing.T) {
	if _, err := Parse(list); err != nil {
		t.Fatalf("%s: %v", File, err)
	}
	for _, p := range Packages() {
		for _, it := range p.Items {
			if got, _ := Provider(it); got != p.Name {
				t.Errorf("Provider(%q) = %q, want %q", it, got, p.Name)
			}
		}
	}
	if got := NotFound("promtool"); got != "promtool not found: install Debian package prometheus (make deps)" {
		t.Errorf("NotFound(promtool) = %q", got)
	}
	if got := NotFound("python3:torch"); got != "python3 module torch not found: install Debian package python3-torch (make deps)" {
		t.Errorf("NotFound(python3:torch) = %q", got)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "# nothing\n\n", "no packages"},
		{"no colon", "prometheus promtool\n", "is not"},
		{"indented package", " prometheus: promtool\n", "is not"},
		{"upper case", "Prometheus: promtool\n", "is not"},
		{"no items", "prometheus:\n", "provides nothing"},
		{"package twice", "a1: x\na1: y\n", "package a1 again"},
		{"item twice", "a1: x\nb1: x\n", "x again"},
		{"relative path", "a1: bin/x\n", "must be absolute"},
		{"bad module", "a1: python3:\n", "not a Python module"},
		{"quote", "a1: it's\n", "not a command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %v, want an error with %q", tc.text, err, tc.want)
			}
		})
	}
	if got, err := Parse("# c\na1: x /usr/bin/y python3:z # why\n"); err != nil || len(got) != 1 || strings.Join(got[0].Items, " ") != "x /usr/bin/y python3:z" {
		t.Errorf("Parse of a good line = %+v, %v", got, err)
	}
}

// notListed are the commands tests may run that no Debian package of the list
// provides.
var notListed = map[string]string{
	"go": "the Go toolchain: the README's one prerequisite, which go test puts first on PATH",
}

// A use is one command a test runs, or the alternatives it accepts.
type use struct {
	pos   string
	names []string
}

// TestEveryCommandTheTestsRunIsListed reads every test file (*_test.go,
// everything under test/, and helpers that import testing, like testenv's)
// and finds the commands they run by name: the
// literal first argument of exec.Command, exec.CommandContext and
// exec.LookPath, the item of testenv.Need, the names given to FindBinary and
// the first word of an offload Command. Each must be an item of the list. A
// command held in a variable is not seen here; Need's own check covers it
// when the test runs. No test may skip by itself either: a skip goes through
// testenv.Missing, which fails under CI.
func TestEveryCommandTheTestsRunIsListed(t *testing.T) {
	uses, skips := scanTests(t)
	if len(uses) < 10 {
		t.Fatalf("found only %d commands run by the tests: the scan is broken", len(uses))
	}
	seen := map[string]bool{}
	for _, u := range uses {
		ok := false
		for _, n := range u.names {
			seen[n] = true
			ok = ok || listed(n)
		}
		if !ok {
			t.Errorf("%s: runs %s, which %s does not list: add it under the Debian package that provides it%s",
				u.pos, strings.Join(u.names, " or "), File, advice(u.names[0]))
		}
	}
	for _, s := range skips {
		t.Errorf("%s: skips by itself: use testenv.Need for a command, testenv.Missing for root or a device (it fails under CI)", s)
	}
	// The ones the tests are known to run, so that a scan finding nothing
	// does not pass.
	for _, want := range []string{"promtool", "rclone", "buildah", "runc", "prometheus", "du", "sh", "go", "make"} {
		if !seen[want] {
			t.Errorf("the scan did not find %s among the commands the tests run", want)
		}
	}
}

func listed(name string) bool {
	if _, ok := notListed[name]; ok {
		return true
	}
	if _, ok := Provider(name); ok {
		return true
	}
	if name == Python {
		// Debian's python3 comes with every python3:module of the list.
		for _, p := range Packages() {
			for _, it := range p.Items {
				if strings.HasPrefix(it, PythonPrefix) {
					return true
				}
			}
		}
	}
	return false
}

func advice(name string) string {
	if name == "python3" || name == "python" {
		return ` (for a module, testenv.Need(t, "python3:module") returns Debian's python3; the first python3 on PATH may not have it)`
	}
	return ""
}

// scanTests returns the commands the test files run by name and the places
// they call t.Skip, Skipf or SkipNow.
func scanTests(t *testing.T) (uses []use, skips []string) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			base := d.Name()
			if path != repoRoot && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || base == "testdata" || base == "vendor" || base == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if !strings.HasSuffix(path, "_test.go") && !strings.HasPrefix(filepath.ToSlash(rel), "test/") && !imports(f, "testing") {
			return nil
		}
		u, sk := scanFile(fset, f, filepath.ToSlash(rel))
		uses, skips = append(uses, u...), append(skips, sk...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return uses, skips
}

// scanFile returns the commands f runs by name and its skips; rel is its name
// in the messages.
func scanFile(fset *token.FileSet, f *ast.File, rel string) (uses []use, skips []string) {
	add := func(n ast.Node, names ...string) {
		p := fset.Position(n.Pos())
		p.Filename = rel
		uses = append(uses, use{pos: p.String(), names: names})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch name := funcName(n.Fun); name {
			case "exec.Command", "exec.LookPath":
				if s, ok := stringArg(n, 0); ok {
					add(n, s)
				}
			case "exec.CommandContext":
				if s, ok := stringArg(n, 1); ok {
					add(n, s)
				}
			case "testenv.Need", "Need":
				if s, ok := stringArg(n, 1); ok {
					add(n, s)
				}
			case "stack.FindBinary", "FindBinary":
				var names []string
				for i := range n.Args {
					if s, ok := stringArg(n, i); ok {
						names = append(names, s)
					}
				}
				if len(names) > 0 {
					add(n, names...)
				}
			default:
				if strings.HasSuffix(name, ".Skip") || strings.HasSuffix(name, ".Skipf") || strings.HasSuffix(name, ".SkipNow") {
					if f.Name.Name != "testenv" {
						p := fset.Position(n.Pos())
						p.Filename = rel
						skips = append(skips, p.String())
					}
				}
			}
		case *ast.KeyValueExpr: // Config{Command: []string{"rclone", ...}}
			if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Command" {
				if s, ok := firstString(n.Value); ok {
					add(n, s)
				}
			}
		case *ast.AssignStmt: // cfg.Command = []string{"rclone", ...}
			for i, l := range n.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Command" && i < len(n.Rhs) {
					if s, ok := firstString(n.Rhs[i]); ok {
						add(n, s)
					}
				}
			}
		}
		return true
	})
	return uses, skips
}

func imports(f *ast.File, path string) bool {
	for _, i := range f.Imports {
		if p, _ := strconv.Unquote(i.Path.Value); p == path {
			return true
		}
	}
	return false
}

// funcName is "pkg.Func", "x.Method" or "Func" for a call's function.
func funcName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			return x.Name + "." + e.Sel.Name
		}
		return "." + e.Sel.Name
	}
	return ""
}

// stringArg is argument i of call when it is a string literal that names a
// command: not a path to something the test made itself ("./x").
func stringArg(call *ast.CallExpr, i int) (string, bool) {
	if i >= len(call.Args) {
		return "", false
	}
	return commandLiteral(call.Args[i])
}

func firstString(e ast.Expr) (string, bool) {
	cl, ok := e.(*ast.CompositeLit)
	if !ok || len(cl.Elts) == 0 {
		return "", false
	}
	return commandLiteral(cl.Elts[0])
}

func commandLiteral(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil || s == "" || strings.HasPrefix(s, ".") {
		return "", false
	}
	return s, true
}

// TestCIAndREADMEUseTheList: the README shows testCommand as the way to run
// the tests and points at the list, .ci/run runs that very command and no
// install of its own, and make test checks the list before anything else.
func TestCIAndREADMEUseTheList(t *testing.T) {
	ci := readFile(t, ".ci/run")
	if !hasLine(ci, testCommand) {
		t.Errorf(".ci/run does not run the README's test command %q as a line of its own:\n%s", testCommand, ci)
	}
	if strings.Contains(ci, "apt-get install") {
		t.Errorf(".ci/run installs packages itself; it must install them with make deps, from %s:\n%s", File, ci)
	}
	if !regexp.MustCompile(`(?m)^export\b.*\bCI=true\b`).MatchString(ci) {
		t.Errorf(".ci/run does not export CI=true: a missing root or device would skip tests in CI:\n%s", ci)
	}

	for _, readme := range []struct{ file, heading string }{
		{"README.md", "## Quick start"},
		{"README.zh-CN.md", "## 快速开始"},
	} {
		section := sectionOf(t, readFile(t, readme.file), readme.heading)
		block := firstCodeBlock(section)
		if !hasCommand(block, testCommand) || !hasCommand(block, "make run") {
			t.Errorf("%s: the quick start's commands are not `make run` and `%s`:\n%s", readme.file, testCommand, block)
		}
		if !strings.Contains(section, File) {
			t.Errorf("%s: the quick start does not point at %s", readme.file, File)
		}
	}

	mk := readFile(t, "Makefile")
	m := regexp.MustCompile(`(?m)^test:(.*)$`).FindStringSubmatch(mk)
	if m == nil || len(strings.Fields(m[1])) == 0 || strings.Fields(m[1])[0] != "check-deps" {
		t.Errorf("Makefile: make test does not start with check-deps: %q", m)
	}
	for _, want := range []string{"sh deps/deps.sh install", "sh deps/deps.sh check"} {
		if !strings.Contains(mk, want) {
			t.Errorf("Makefile does not run %q", want)
		}
	}
	if sh := readFile(t, "deps/deps.sh"); !strings.Contains(sh, "/debian.txt") {
		t.Errorf("deps/deps.sh does not read debian.txt")
	}
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// hasCommand: a line of the code block is cmd, with or without a comment.
func hasCommand(block, cmd string) bool {
	for _, l := range strings.Split(block, "\n") {
		l, _, _ = strings.Cut(l, "#")
		if strings.TrimSpace(l) == cmd {
			return true
		}
	}
	return false
}

// sectionOf is the text from heading to the next heading of its level.
func sectionOf(t *testing.T, text, heading string) string {
	t.Helper()
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("no %q section", heading)
	}
	rest := text[i+len(heading)+2:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func firstCodeBlock(section string) string {
	_, after, ok := strings.Cut(section, "```")
	if !ok {
		return ""
	}
	_, after, _ = strings.Cut(after, "\n") // the language tag
	block, _, _ := strings.Cut(after, "```")
	return block
}

// commandItems are the list's items looked up in PATH, sorted.
func commandItems() []string {
	var out []string
	for _, p := range Packages() {
		for _, it := range p.Items {
			if !strings.HasPrefix(it, "/") && !strings.HasPrefix(it, PythonPrefix) {
				out = append(out, it)
			}
		}
	}
	sort.Strings(out)
	return out
}

// The scan itself, on a file made for it: what it must see and what not.
func TestScanFile(t *testing.T) {
	src := `package x

func TestX(t *testing.T) {
	exec.Command("frobnicate", "-v")
	exec.CommandContext(ctx, "promtool", "check")
	exec.LookPath("python3")
	exec.Command(bin, "serve")      // a variable: not seen
	exec.Command("./helper")        // the test's own: not seen
	testenv.Need(t, "python3:torch")
	stack.FindBinary("prometheus-alertmanager", "alertmanager")
	_ = Config{Command: []string{"rclone", "copyto"}}
	cfg.Command = []string{"cp", "{path}"}
	t.Skip("no reason")
	if testing.Short() {
		t.SkipNow()
	}
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	uses, skips := scanFile(fset, f, "x_test.go")
	var got []string
	for _, u := range uses {
		got = append(got, strings.Join(u.names, "|"))
	}
	want := "frobnicate promtool python3 python3:torch prometheus-alertmanager|alertmanager rclone cp"
	if strings.Join(got, " ") != want {
		t.Errorf("commands found: %q, want %q", strings.Join(got, " "), want)
	}
	if len(skips) != 2 {
		t.Errorf("skips found: %q, want 2", skips)
	}
	for name, want := range map[string]bool{"frobnicate": false, "python3": false, "promtool": true, "python3:torch": true, "go": true, Python: true} {
		if listed(name) != want {
			t.Errorf("listed(%q) = %v, want %v", name, !want, want)
		}
	}
}
