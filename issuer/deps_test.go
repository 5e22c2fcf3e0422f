package issuer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the layering of DESIGN.md: issuer may use vault
// (which alone touches bbolt and age) and quota, never cmd, cobra or viper.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	list := func(args ...string) []string {
		out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	for _, dep := range list("-f", `{{join .Imports "\n"}}`, ".") {
		for _, prefix := range []string{"go.etcd.io/bbolt", "filippo.io/age"} {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("issuer imports %s directly; only vault may", dep)
			}
		}
	}
	for _, dep := range list("-deps", ".") {
		for _, prefix := range []string{"github.com/spf13/", "github.com/golang-jwt/", "github.com/keymint/keymint/cmd"} {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("issuer depends on %s", dep)
			}
		}
	}
}
