package issuer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps issuer pure token logic: the vault owns bbolt and
// age, cmd owns cobra and viper, and issuer imports no other keymint
// package yet (when the endpoint arrives it may use vault, never cmd).
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"go.etcd.io/bbolt", "filippo.io/age", "github.com/spf13/cobra", "github.com/spf13/viper",
		"github.com/golang-jwt/", // test-only
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, prefix := range forbidden {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("issuer depends on %s", dep)
			}
		}
		if strings.HasPrefix(dep, "github.com/keymint/keymint/") && dep != "github.com/keymint/keymint/issuer" {
			t.Errorf("issuer depends on keymint package %s", dep)
		}
	}
}
