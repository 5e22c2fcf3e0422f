package vault_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/keymint/keymint/vault"
)

// TestValidateNameSecret: a name shaped like a secret or a JWT is refused,
// and the error does not repeat it.
func TestValidateNameSecret(t *testing.T) {
	const random = "Fak3SecretF1xtureF0rMaskingTestsN0tReal01231XuaeJ" // a fake
	for _, tt := range []struct{ name, shown string }{
		{"km_" + random, "km_****"},
		{"kmcs_" + random, "kmcs_****"},
		{"acme_" + random, "acme_****"},
		{"ci-km_" + random, "ci-km_****"},
		{"km_" + random[:45] + ".old", "km_****"},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln", "eyJ****"},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "eyJ****."},
		{"km_" + random + "!", "km_****!"}, // not a valid name either
	} {
		err := vault.ValidateName(tt.name)
		if !errors.Is(err, vault.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", tt.name, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, random[5:25]) || !strings.Contains(msg, strconv.Quote(tt.shown)) {
			t.Errorf("ValidateName(%q) = %q, want it to show %q and nothing of the secret", tt.name, msg, tt.shown)
		}
	}
	// Names that only come near: a SHA-1 after a prefix, an id's length.
	for _, name := range []string{"ci_3f2a9c0d1e4b5a6978695a4b3c2d1e0f9a8b7c6d", "deploy_" + random[:20], "eyJ.a.b", "eyJhbGciOiJub25lIn0"} {
		if err := vault.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", name, err)
		}
	}
}
