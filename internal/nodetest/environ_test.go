package nodetest

import (
	"slices"
	"testing"
)

func TestEnviron(t *testing.T) {
	t.Setenv("NODE_OPTIONS", "--require=/elsewhere.js")
	t.Setenv("NODE_PATH", "/elsewhere")
	t.Setenv("ISSUER", "http://old")
	got := environ(map[string]string{"ISSUER": "http://127.0.0.1:1", "CLIENT_ID": "cl_x"})
	for _, kv := range got {
		if kv == "NODE_OPTIONS=--require=/elsewhere.js" || kv == "NODE_PATH=/elsewhere" || kv == "ISSUER=http://old" {
			t.Errorf("environ kept %s", kv)
		}
	}
	for _, want := range []string{"ISSUER=http://127.0.0.1:1", "CLIENT_ID=cl_x"} {
		if !slices.Contains(got, want) {
			t.Errorf("environ lacks %s", want)
		}
	}
}
