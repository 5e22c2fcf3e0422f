package server

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the layering of ARCHITECTURE.md: the server is
// built on token, quota and vault (which alone touches bbolt and age); it
// never uses cmd, cobra or viper, and golang-jwt only in tests. token never
// imports server: token's own TestDependencies checks that side.
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
	sawToken := false
	for _, dep := range list("-f", `{{join .Imports "\n"}}`, ".") {
		for _, prefix := range []string{"go.etcd.io/bbolt", "filippo.io/age"} {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("server imports %s directly; only vault may", dep)
			}
		}
		sawToken = sawToken || dep == "github.com/keymint/keymint/token"
	}
	if !sawToken {
		t.Error("server does not import token: go list did not list what this test expects")
	}
	for _, dep := range list("-deps", ".") {
		for _, prefix := range []string{"github.com/spf13/", "github.com/golang-jwt/", "github.com/keymint/keymint/cmd"} {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("server depends on %s", dep)
			}
		}
	}
}
