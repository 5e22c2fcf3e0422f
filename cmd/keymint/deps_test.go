package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the layering of ARCHITECTURE.md: only vault
// imports bbolt and age. keymint (and the benchmark tools beside it) reach
// them through vault alone, identities and recipients included, and so do
// their tests, which change vault files through vault/vaulttest. That
// package is for tests: the binary must not import it.
func TestDependencies(t *testing.T) {
	list := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("go list %v: %v\n%s", args, err, stderr)
		}
		return strings.Fields(string(out))
	}
	const imports = `{{range .Imports}}{{$.ImportPath}} {{.}}{{"\n"}}{{end}}` +
		`{{range .TestImports}}{{$.ImportPath}} {{.}}{{"\n"}}{{end}}` +
		`{{range .XTestImports}}{{$.ImportPath}} {{.}}{{"\n"}}{{end}}`
	pairs := list("-f", imports, ".", "../../bench/...")
	if len(pairs) == 0 || len(pairs)%2 != 0 {
		t.Fatalf("go list printed %d fields, want pairs of importer and import", len(pairs))
	}
	sawVault := false
	for i := 0; i < len(pairs); i += 2 {
		pkg, imp := pairs[i], pairs[i+1]
		for _, banned := range []string{"go.etcd.io/bbolt", "filippo.io/age"} {
			if imp == banned || strings.HasPrefix(imp, banned+"/") {
				t.Errorf("%s imports %s directly; only vault may", pkg, imp)
			}
		}
		sawVault = sawVault || imp == "github.com/keymint/keymint/vault"
	}
	if !sawVault {
		t.Fatal("no package imports vault: go list did not list what this test expects")
	}
	for _, dep := range list("-deps", ".") {
		if dep == "github.com/keymint/keymint/vault/vaulttest" {
			t.Error("the keymint binary depends on vault/vaulttest, which is for tests only")
		}
	}
}
