package lint

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rows encodes DESIGN.md's Layout table, top to bottom: a package may import
// packages of rows above its own (lower numbers), not its own row's other
// packages nor anything below. The standard library and other modules are
// not checked. Paths are relative to the module; "x/..." covers x and every
// package under it, which may import each other (Go rules out cycles).
//
// Where DESIGN.md puts several packages in one row but one of them needs
// another, the row is split here in the order the design implies: client
// decodes api's wire types; the composition root (internal/app) wires
// internal/server; internal/cli runs the app; everything reads
// internal/config. examples/... (the runnable examples the CLI registers)
// sits below everything an example may show and above the commands. num/...
// (exact decimals for hot paths) imports only the standard library and
// shopspring/decimal, and jsonscan (top-level members of a JSON object,
// without decoding it) only the standard library, so they head the table:
// every package may use them, and they use none.
var rows = []struct {
	rank  int
	paths []string
}{
	{0, []string{"num/...", "jsonscan", "internal/atomicfile"}},
	{1, []string{"event"}},
	{2, []string{"store"}},
	{3, []string{"store/storetest"}},
	{4, []string{"eventlog", "pgstore", "pglease"}},
	{5, []string{"aggregate/..."}},
	{6, []string{"projection", "pgstate"}},
	{7, []string{"stream/..."}},
	{8, []string{"rules/..."}},
	{9, []string{"api"}},
	{10, []string{"client"}},
	{11, []string{"examples/..."}},
	{12, []string{"internal/config", "internal/readmodels"}},
	{13, []string{"internal/cluster"}},
	{14, []string{"internal/server"}},
	{15, []string{"internal/app"}},
	{16, []string{"internal/cli"}},
	{17, []string{"web"}},
	{18, []string{"cmd/strata", "bench/..."}},
}

const (
	// testOnly may be imported by test files only: it imports "testing".
	testOnly = "store/storetest"
	// isolated imports nothing of the module and nothing imports it.
	isolated = "internal/lint"
)

// layer is where a package sits in rows.
type layer struct {
	rank  int
	entry string // the rows entry that matched: a path or "x/..."
}

// layerOf finds pkg (module-relative) in rows; the most specific entry wins.
func layerOf(pkg string) (layer, bool) {
	var best layer
	found := false
	for _, row := range rows {
		for _, p := range row.paths {
			prefix, subtree := strings.CutSuffix(p, "/...")
			if pkg != prefix && (!subtree || !strings.HasPrefix(pkg, prefix+"/")) {
				continue
			}
			if !found || len(p) > len(best.entry) {
				best, found = layer{row.rank, p}, true
			}
		}
	}
	return best, found
}

func unknown(pkg string) string {
	return fmt.Sprintf("package %s is not in the layer table: add it to rows in internal/lint/lint_test.go, in the row DESIGN.md's Layout table gives it", pkg)
}

// check returns why pkg may not import imp, or "" if it may. Both are
// module-relative paths; test says the import is in a _test.go file, which
// may also import store/storetest and packages of its own row.
func check(pkg, imp string, test bool) string {
	if pkg == isolated {
		return fmt.Sprintf("%s imports %s: %s must import nothing of the module", pkg, imp, isolated)
	}
	if imp == isolated {
		return fmt.Sprintf("%s imports %s, which is not a library", pkg, imp)
	}
	pl, ok := layerOf(pkg)
	if !ok {
		return unknown(pkg)
	}
	il, ok := layerOf(imp)
	if !ok {
		return unknown(imp)
	}
	switch {
	case imp == testOnly && !test:
		return fmt.Sprintf("%s imports %s outside its tests: %s is for _test.go files only", pkg, imp, testOnly)
	case imp == testOnly && test:
		return ""
	case pl.entry == il.entry: // the same package, or one subtree
		return ""
	case test && il.rank <= pl.rank:
		return ""
	case il.rank < pl.rank:
		return ""
	case il.rank == pl.rank:
		return fmt.Sprintf("%s imports %s: both are in row %d, and a package may import only rows above its own (DESIGN.md, Layout)", pkg, imp, pl.rank)
	default:
		what := "imports"
		if test {
			what = "tests import"
		}
		return fmt.Sprintf("%s (row %d) %s %s (row %d): a package may import only rows above its own (DESIGN.md, Layout)", pkg, pl.rank, what, imp, il.rank)
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		pkg, imp string
		test     bool
		bad      bool
	}{
		{"store", "event", false, false},
		{"event", "store", false, true},
		{"event", "event", true, false}, // event_test imports event
		{"eventlog", "store", false, false},
		{"eventlog", "event", false, false},
		{"eventlog", "pgstore", false, true}, // same row
		{"pgstore", "eventlog", false, true},
		{"eventlog", "aggregate", false, true},
		{"aggregate", "eventlog", false, false},
		{"projection", "aggregate", false, false},
		{"aggregate", "projection", false, true},

		// store/storetest: tests only, from any row.
		{"eventlog", "store/storetest", false, true},
		{"eventlog", "store/storetest", true, false},
		{"event", "store/storetest", true, false},
		{"cmd/strata", "store/storetest", false, true},
		{"store/storetest", "store", false, false},
		{"store/storetest", "eventlog", false, true},

		// Tests may import their own row and above, never below.
		{"eventlog", "pgstore", true, false},
		{"store", "eventlog", true, true},
		{"aggregate", "projection", true, true},

		// num/... is above everything and imports nothing of the module.
		{"event", "num", false, false},
		{"stream", "num", false, false},
		{"examples/orders", "num", false, false},
		{"num", "event", false, true},
		{"num", "event", true, true},
		{"num/internal/x", "num", false, false},

		// So is jsonscan, beside num/... (neither may import the other).
		{"stream/job", "jsonscan", false, false},
		{"projection", "jsonscan", false, false},
		{"jsonscan", "event", false, true},
		{"jsonscan", "num", false, true},

		// stream/... is one row whose packages may import each other.
		{"stream", "projection", false, false},
		{"stream", "rules", false, true},
		{"stream/runner", "stream", false, false},
		{"stream/runner", "projection", false, false},
		{"stream/runner", "rules", false, true},
		{"rules", "stream/runner", false, false},
		{"projection", "stream/runner", false, true},

		// The split rows: api < client < config < server < app < cli.
		{"client", "api", false, false},
		{"api", "client", false, true},
		{"api", "rules", false, false},
		{"internal/server", "internal/config", false, false},
		{"internal/config", "internal/server", false, true},
		{"internal/app", "internal/server", false, false},
		{"internal/server", "internal/app", false, true},
		{"internal/cli", "internal/app", false, false},
		{"internal/cli", "client", false, false},
		{"internal/app", "internal/cli", false, true},
		{"internal/server", "web", false, true}, // web is below internal/
		{"web", "event", false, false},

		// The bottom row imports everything above, not each other.
		{"cmd/strata", "internal/cli", false, false},
		{"cmd/strata", "web", false, false},
		{"cmd/strata", "eventlog", false, false},
		{"bench/compare", "internal/app", false, false},
		{"bench/compare", "bench/internal/load", false, false},
		{"bench", "cmd/strata", false, true},
		{"cmd/strata", "bench/compare", false, true},

		// internal/lint stands apart.
		{"internal/lint", "event", false, true},
		{"internal/lint", "event", true, true},
		{"internal/cli", "internal/lint", false, true},

		// Packages missing from the table.
		{"unknown", "event", false, true},
		{"event", "unknown", false, true},
		{"eventlog/internal/segment", "event", false, true},
		{"cmd/other", "event", false, true},
		{"internal/cli", "internal", false, true},
	}
	for _, c := range cases {
		got := check(c.pkg, c.imp, c.test)
		if (got != "") != c.bad {
			want := "allowed"
			if c.bad {
				want = "a violation"
			}
			t.Errorf("check(%q imports %q, test=%v) = %q, want %s", c.pkg, c.imp, c.test, got, want)
		}
	}
}

func TestLayerOf(t *testing.T) {
	cases := []struct {
		pkg   string
		entry string // "" when unknown
	}{
		{"event", "event"},
		{"num", "num/..."},
		{"num/x", "num/..."},
		{"numx", ""},
		{"store", "store"},
		{"store/storetest", "store/storetest"},
		{"store/other", ""},
		{"stream", "stream/..."},
		{"stream/runner", "stream/..."},
		{"streamx", ""},
		{"bench", "bench/..."},
		{"bench/a/b", "bench/..."},
		{"cmd/strata", "cmd/strata"},
		{"cmd", ""},
		{"internal", ""},
		{"internal/lint", ""}, // not a row: handled by check
	}
	for _, c := range cases {
		l, ok := layerOf(c.pkg)
		if !ok {
			l.entry = ""
		}
		if l.entry != c.entry {
			t.Errorf("layerOf(%q) = %q, want %q", c.pkg, l.entry, c.entry)
		}
	}
}

// listedPackage is what `go list -json` says of a package.
type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// TestLayers checks every package of the module against rows.
func TestLayers(t *testing.T) {
	root, modPath := findModule(t)
	pkgs := goList(t, root)
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}

	rel := func(path string) (string, bool) {
		if path == modPath {
			return ".", true
		}
		r, ok := strings.CutPrefix(path, modPath+"/")
		return r, ok
	}
	var problems []string
	seen := map[string]bool{}
	report := func(p string) {
		if !seen[p] {
			seen[p] = true
			problems = append(problems, p)
		}
	}
	for _, p := range pkgs {
		pkg, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		if p.Error != nil {
			t.Logf("go list: %s: %s (its imports may be incomplete)", pkg, p.Error.Err)
		}
		if _, known := layerOf(pkg); !known && pkg != isolated {
			report(unknown(pkg))
			continue
		}
		for _, imports := range []struct {
			list []string
			test bool
		}{{p.Imports, false}, {p.TestImports, true}, {p.XTestImports, true}} {
			for _, path := range imports.list {
				imp, ok := rel(path)
				if !ok {
					continue // standard library or another module
				}
				if why := check(pkg, imp, imports.test); why != "" {
					report(why)
				}
			}
		}
	}
	slices.Sort(problems)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("checked %d packages", len(pkgs))
}

// findModule walks up from the working directory to go.mod and returns the
// module's root directory and path.
func findModule(t *testing.T) (root, modPath string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(rest), `"`)
				}
			}
			t.Fatalf("%s has no module line", f.Name())
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// goList runs `go list -e -json ./...` in root. -e keeps going past packages
// that do not build, whose imports are still listed.
func goList(t *testing.T, root string) []listedPackage {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list packages: %v", err)
	}
	cmd := exec.Command(gocmd, "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}
