package flowtest_test

import (
	"crypto/rand"
	"os"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keymint/keymint/internal/browsertest"
	"github.com/keymint/keymint/internal/flowtest"
	"github.com/keymint/keymint/vault"
)

func TestMain(m *testing.M) { os.Exit(flowtest.Main(m)) }

// userPassword is u1's password in every test.
const userPassword = "correct horse battery staple"

// site is a `keymint serve` with one user, u1, and one confidential
// authorization_code client, webapp, whose redirect URI is a loopback
// callback the browser lands on.
type site struct {
	k      *flowtest.Keymint
	issuer string
	cb     *browsertest.Callback
	webapp flowtest.Client
	user   *vault.User
}

func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{cb: browsertest.NewCallback(t), k: flowtest.New(t)}
	s.webapp = s.k.NewClient("webapp", "--grant", "authorization_code", "--redirect-uri", s.cb.URL,
		"--scope", "reports:read reports:write", "--description", "Monthly reports for the team")
	s.user = s.k.AddUser("u1", "Ada Lovelace", userPassword)
	s.issuer = s.k.Serve()
	return s
}

// stayedOnMachine fails the test if the browser's pages asked for anything
// off this machine: keymint's pages load nothing from elsewhere.
func stayedOnMachine(t *testing.T, b *browsertest.Browser) {
	t.Helper()
	if off := b.OffMachine(); len(off) > 0 {
		t.Errorf("the pages made requests that would leave the machine: %v", off)
	}
}

// authURL is an authorization request of webapp for scopes, with PKCE
// (S256), a state and a nonce, and extra parameters such as ui_locales;
// it returns the request's URL and its PKCE verifier.
func (s *site) authURL(scopes []string, extra ...oauth2.AuthCodeOption) (authURL, verifier string) {
	cfg := oauth2.Config{ClientID: s.webapp.ID, RedirectURL: s.cb.URL, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/authorize", TokenURL: s.issuer + "/token"}}
	verifier = oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", rand.Text())}, extra...)
	return cfg.AuthCodeURL(rand.Text(), opts...), verifier
}
