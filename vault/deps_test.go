package vault

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the layering of DESIGN.md: vault is the bottom of
// keymint and uses none of token, server, quota or cmd, and no CLI library
// (STYLE.md, habit 10).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/keymint/keymint/token", "github.com/keymint/keymint/server", "github.com/keymint/keymint/quota", "github.com/keymint/keymint/cmd",
			"github.com/spf13/",
		} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("vault depends on %s", dep)
			}
		}
	}
}
