// Package deps is the list of the Debian packages the tests need, debian.txt,
// read for Go: which package provides a command, a file or a Python module a
// test uses. The Makefile reads the same file (deps.sh) to install the
// packages (make deps) and to check them before make test starts; keeping the
// list in one file is what stops the README, CI and the tests' messages from
// each naming a different set.
package deps

import (
	_ "embed"
	"fmt"
	"strings"
)

// Embedded rather than read at run time: a test binary runs in its package's
// directory, or copied elsewhere, or as another user, and must still know.
//
//go:embed debian.txt
var list string

// File is the list's path from the repository root.
const File = "deps/debian.txt"

// PythonPrefix marks an item that is a module of Debian's Python
// ("python3:torch"); Python is /usr/bin/python3.
const (
	PythonPrefix = "python3:"
	Python       = "/usr/bin/python3"
)

// A Package is one line of the list: a Debian package and the items (commands,
// absolute paths, python3:modules) the tests use from it.
type Package struct {
	Name  string
	Items []string
}

var packages, parseErr = Parse(list)

// Packages returns the list, in its order. It panics if debian.txt does not
// parse (deps_test.go says why).
func Packages() []Package {
	if parseErr != nil {
		panic(parseErr)
	}
	return packages
}

// Provider returns the Debian package that provides item.
func Provider(item string) (pkg string, ok bool) {
	for _, p := range Packages() {
		for _, it := range p.Items {
			if it == item {
				return p.Name, true
			}
		}
	}
	return "", false
}

// Describe names item for a person: "promtool", "/usr/sbin/sshd",
// "python3 module torch".
func Describe(item string) string {
	if m, ok := strings.CutPrefix(item, PythonPrefix); ok {
		return "python3 module " + m
	}
	return item
}

// NotFound is what a test says when item is missing: "promtool not found:
// install Debian package prometheus (make deps)".
func NotFound(item string) string {
	pkg, ok := Provider(item)
	if !ok {
		return fmt.Sprintf("%s not found (and not in %s)", Describe(item), File)
	}
	return fmt.Sprintf("%s not found: install Debian package %s (make deps)", Describe(item), pkg)
}

// Parse reads a list in debian.txt's format: blank lines and # comments
// ignored, every other line "package: item item ...", each package once,
// each item once and under one package.
func Parse(text string) ([]Package, error) {
	var out []Package
	seen := map[string]string{} // package or item -> where it was first seen
	for i, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		where := fmt.Sprintf("line %d", i+1)
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !validPackage(name) {
			return nil, fmt.Errorf("%s: %q is not \"package: item ...\"", where, line)
		}
		if at, dup := seen["package "+name]; dup {
			return nil, fmt.Errorf("%s: package %s again (first at %s)", where, name, at)
		}
		seen["package "+name] = where
		p := Package{Name: name, Items: strings.Fields(rest)}
		if len(p.Items) == 0 {
			return nil, fmt.Errorf("%s: package %s provides nothing the tests use", where, name)
		}
		for _, it := range p.Items {
			if err := validItem(it); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if at, dup := seen["item "+it]; dup {
				return nil, fmt.Errorf("%s: %s again (first at %s)", where, it, at)
			}
			seen["item "+it] = where
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no packages")
	}
	return out, nil
}

// validPackage accepts Debian's package names: lower-case letters, digits,
// '+', '-', '.', starting with a letter or digit.
func validPackage(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case i > 0 && (r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

func validItem(it string) error {
	if m, ok := strings.CutPrefix(it, PythonPrefix); ok {
		if m == "" || strings.ContainsAny(m, "/:'\"") {
			return fmt.Errorf("%q: not a Python module name", it)
		}
		return nil
	}
	if strings.ContainsAny(it, ":'\"$`\\") {
		return fmt.Errorf("%q: not a command, an absolute path or %smodule", it, PythonPrefix)
	}
	if strings.Contains(it, "/") && !strings.HasPrefix(it, "/") {
		return fmt.Errorf("%q: a path must be absolute", it)
	}
	return nil
}
