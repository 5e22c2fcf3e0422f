package nodetest_test

import (
	"strings"
	"testing"

	"github.com/keymint/keymint/internal/flowtest"
	"github.com/keymint/keymint/internal/nodetest"
)

// TestNodeOpenIDClientCredentials: a Node.js application with
// openid-client v6 finds keymint serve from its issuer URL alone, gets a
// token with client_credentials under either client authentication, and
// jose verifies it against the published JWKS as an RFC 9068 access token.
func TestNodeOpenIDClientCredentials(t *testing.T) {
	nodetest.Dir(t) // node and the clients are there, before keymint is built
	k := flowtest.New(t)
	c := k.NewClient("node-smoke", "--scope", "invoices:read invoices:write")
	issuer := k.Serve()

	for _, auth := range []string{"post", "basic"} { // openid-client's default, then ClientSecretBasic
		t.Run(auth, func(t *testing.T) {
			var got struct {
				Error    string `json:"error"`
				Metadata struct {
					Issuer        string `json:"issuer"`
					TokenEndpoint string `json:"token_endpoint"`
					JWKSURI       string `json:"jwks_uri"`
				} `json:"metadata"`
				Token struct {
					TokenType string `json:"token_type"`
					ExpiresIn int    `json:"expires_in"`
					Scope     string `json:"scope"`
				} `json:"token"`
				Header map[string]any `json:"header"`
				Claims struct {
					Iss      string `json:"iss"`
					Sub      string `json:"sub"`
					ClientID string `json:"client_id"`
					Scope    string `json:"scope"`
					Iat, Exp int64
					JTI      string `json:"jti"`
				} `json:"claims"`
			}
			nodetest.RunJSON(t, "client_credentials.mjs", map[string]string{
				"ISSUER": issuer, "CLIENT_ID": c.ID, "CLIENT_SECRET": c.Secret, "SCOPE": "invoices:read", "CLIENT_AUTH": auth,
			}, &got)
			if got.Error != "" {
				t.Fatalf("token endpoint: %s", got.Error)
			}

			md := got.Metadata
			if md.Issuer != issuer || md.TokenEndpoint != issuer+"/token" || md.JWKSURI != issuer+"/jwks.json" {
				t.Errorf("discovered %+v, issuer %s", md, issuer)
			}
			// oauth4webapi lowercases token_type.
			if tok := got.Token; !strings.EqualFold(tok.TokenType, "Bearer") || tok.Scope != "invoices:read" || tok.ExpiresIn < 3590 || tok.ExpiresIn > 3600 {
				t.Errorf("token response %+v", tok)
			}
			if h := got.Header; h["typ"] != "at+jwt" || h["alg"] != "ES256" || h["kid"] == "" {
				t.Errorf("JOSE header %v", h)
			}
			cl := got.Claims
			if cl.Iss != issuer || cl.Sub != c.ID || cl.ClientID != c.ID || cl.Scope != "invoices:read" || cl.Exp-cl.Iat != 3600 || cl.JTI == "" {
				t.Errorf("claims %+v", cl)
			}
		})

		t.Run(auth+" with a wrong secret", func(t *testing.T) {
			var got struct {
				Error     string `json:"error"`
				Status    int    `json:"status"`
				Challenge string `json:"challenge"`
			}
			nodetest.RunJSON(t, "client_credentials.mjs", map[string]string{
				"ISSUER": issuer, "CLIENT_ID": c.ID, "CLIENT_SECRET": "kmcs_wrong", "CLIENT_AUTH": auth,
			}, &got)
			if got.Error != "invalid_client" || got.Status != 401 || got.Challenge != "basic" {
				t.Errorf("got %+v, want invalid_client, status 401 with a Basic challenge", got)
			}
		})
	}
}
