package token

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the layering of ARCHITECTURE.md: token is the
// token half of keymint, beneath the server. Of keymint's packages it may
// use vault (which alone touches bbolt and age) and apikey, never server,
// quota or cmd; nor cobra or viper; and golang-jwt only in tests.
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
				t.Errorf("token imports %s directly; only vault may", dep)
			}
		}
	}
	const self = "github.com/keymint/keymint/token"
	allowed := map[string]bool{
		self:                                true,
		"github.com/keymint/keymint/vault":  true,
		"github.com/keymint/keymint/apikey": true,
	}
	for _, dep := range list("-deps", ".") {
		if strings.HasPrefix(dep, "github.com/keymint/keymint/") && !allowed[dep] {
			t.Errorf("token depends on %s; of keymint's packages it may use only vault and apikey", dep)
		}
		for _, prefix := range []string{"github.com/spf13/", "github.com/golang-jwt/"} {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("token depends on %s", dep)
			}
		}
	}
}
