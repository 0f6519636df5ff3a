// Package lint holds checks of the repository itself that run as tests.
// lint_test.go enforces the layering of DESIGN.md's Layout table: a package
// may import only packages in rows above its own. The package has no code of
// its own and imports nothing of the module.
package lint
