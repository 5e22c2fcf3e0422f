package quota

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsStayLow keeps quota's dependencies where DESIGN.md puts them:
// the standard library and, once counting moves in, keymint's own vault
// package; never cobra, viper or any other module (STYLE.md, habit 10).
// It reads the package's import lines, so it needs no network or go command.
func TestImportsStayLow(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	const vault = "github.com/keymint/keymint/vault"
	for _, path := range pkg.Imports {
		firstElement, _, _ := strings.Cut(path, "/")
		standard := !strings.Contains(firstElement, ".")
		if !standard && path != vault && !strings.HasPrefix(path, vault+"/") {
			t.Errorf("quota imports %s; only the standard library and %s are allowed", path, vault)
		}
	}
}
