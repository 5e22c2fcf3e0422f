package vault

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Authorization codes.
//
// A code is a secret: like every other it is stored only as its HMAC under
// the index key (purpose "code"), so the file never holds one. It lives a
// few minutes, is redeemed once, and is kept until its expiry so that a
// second redemption is recognised as a reuse (RFC 6749 section 4.1.2): the
// code was stolen, and what was issued with it is revoked. Codes are usage
// data: writing one never advances the generation (format.go's
// usageBuckets), and expired ones are removed a few per write (expiry.go).

const codePurpose = "code"

// minCodeLen is the shortest code accepted: 22 base62 characters hold 128
// bits. Making codes unguessable is the caller's work; this refuses only
// what cannot be.
const minCodeLen = 22

// AuthCode is what an authorization code stands for, stored under its HMAC.
type AuthCode struct {
	ClientID string `json:"client_id"`
	UserID   string `json:"user_id"`
	GrantID  string `json:"grant_id"`
	// RedirectURI is the redirect_uri of the authorization request, which
	// the token request must repeat.
	RedirectURI string `json:"redirect_uri"`
	// RedirectGiven says the authorization request named RedirectURI; if
	// it did not (the client's only one was taken), the token request may
	// leave it out (RFC 6749 section 4.1.3).
	RedirectGiven bool `json:"redirect_given,omitempty"`
	// CodeChallenge is the PKCE S256 code_challenge.
	CodeChallenge string   `json:"code_challenge"`
	Scopes        []string `json:"scopes"`
	// Nonce is the OpenID Connect nonce, for the id_token.
	Nonce string `json:"nonce,omitempty"`
	// AuthTime is when the user signed in (the id_token's auth_time).
	AuthTime  time.Time  `json:"auth_time"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	// FamilyID and AccessTokens are what was issued with the code
	// ([Tx.RecordAuthCodeIssue]), revoked if it is presented again.
	FamilyID     string        `json:"family_id,omitempty"`
	AccessTokens []IssuedToken `json:"access_tokens,omitempty"`
}

// IssuedToken is an access token issued with a code: what revoking it
// needs.
type IssuedToken struct {
	JTI       string    `json:"jti"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ErrCodeInvalid is an authorization code that cannot be redeemed: unknown,
// expired, or issued under a grant that no longer stands (revoked, its
// user removed or disabled, its client removed). A reused code is a
// [CodeReusedError], which wraps it.
var ErrCodeInvalid = errors.New("authorization code is invalid or expired")

// CodeReusedError reports a code presented after it was redeemed. Its
// refresh-token family and access tokens have been revoked by the
// transaction that returned it, which commits (see [Vault.Update]).
type CodeReusedError struct {
	Code *AuthCode
}

func (e *CodeReusedError) Error() string {
	return fmt.Sprintf("authorization code of client %s was already redeemed at %s: the tokens issued with it are revoked",
		e.Code.ClientID, e.Code.UsedAt.UTC().Format(time.RFC3339))
}

func (e *CodeReusedError) Unwrap() error { return ErrCodeInvalid }

// CreateAuthCode stores code (as its HMAC) for c, under c.GrantID, which
// must be the grant of c.UserID to c.ClientID. It sets c.CreatedAt. c must
// expire in the future, carry a code challenge and a redirect URI, and
// have nothing issued yet. Expired codes and refresh tokens are removed on
// the way, a few at a time.
func (tx *Tx) CreateAuthCode(code string, c *AuthCode) error {
	switch {
	case len(code) < minCodeLen:
		return fmt.Errorf("new authorization code: shorter than %d characters", minCodeLen)
	case c.CodeChallenge == "" || c.RedirectURI == "":
		return errors.New("new authorization code: it needs a code challenge and a redirect URI")
	case !c.ExpiresAt.After(tx.now):
		return errors.New("new authorization code: it expires before it is made")
	case c.UsedAt != nil || c.FamilyID != "" || len(c.AccessTokens) > 0:
		return errors.New("new authorization code: it is already redeemed")
	}
	if err := tx.grantStands(c.GrantID, c.UserID, c.ClientID); err != nil {
		return fmt.Errorf("new authorization code: %w", err)
	}
	if err := tx.pruneExpired(queueTokens); err != nil {
		return err
	}
	mac := tx.k.mac(codePurpose, code)
	taken, err := tx.exists(bucketCodes, mac)
	if err != nil {
		return err
	}
	if taken {
		return errors.New("new authorization code: it is already in use")
	}
	c.CreatedAt = tx.now
	c.Scopes = slices.Clone(c.Scopes)
	if err := tx.putJSON(bucketCodes, mac, c); err != nil {
		return err
	}
	return tx.expiryPut(queueTokens, expiryCode, mac, c.ExpiresAt)
}

// RedeemAuthCode marks code used and returns what it stands for; the
// caller checks the client, redirect URI and code verifier against it. A
// code that is unknown, expired, or whose grant no longer stands is
// [ErrCodeInvalid]. A code already redeemed is a [*CodeReusedError]: the
// refresh-token family and access tokens recorded with it are revoked in
// this transaction, which then commits whatever the caller returns.
//
// Expiry is checked before reuse, so that the answer does not depend on
// whether an expired code has been removed yet.
func (tx *Tx) RedeemAuthCode(code string) (*AuthCode, error) {
	mac := tx.k.mac(codePurpose, code)
	var c AuthCode
	ok, err := tx.getJSON(bucketCodes, mac, &c)
	if err != nil {
		return nil, err
	}
	if !ok || !tx.now.Before(c.ExpiresAt) {
		return nil, ErrCodeInvalid
	}
	if c.UsedAt != nil {
		return nil, tx.codeReused(&c)
	}
	if err := tx.grantStands(c.GrantID, c.UserID, c.ClientID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrCodeInvalid
		}
		return nil, err
	}
	now := tx.now
	c.UsedAt = &now
	if err := tx.putJSON(bucketCodes, mac, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// codeReused revokes what was issued with a reused code and makes the
// report the transaction's last word.
func (tx *Tx) codeReused(c *AuthCode) error {
	if c.FamilyID != "" {
		if err := tx.revokeFamily(c.FamilyID, "code reused"); err != nil {
			return err
		}
	}
	for _, t := range c.AccessTokens {
		if err := tx.Revoke(Revocation{JTI: t.JTI, ClientID: c.ClientID, ExpiresAt: t.ExpiresAt}); err != nil {
			return err
		}
	}
	detail := fmt.Sprintf("grant %s: %d access tokens", c.GrantID, len(c.AccessTokens))
	if c.FamilyID != "" {
		detail += " and refresh family " + c.FamilyID
	}
	if err := tx.Audit("code.reuse", c.ClientID, detail+" revoked"); err != nil {
		return err
	}
	return tx.keep(&CodeReusedError{Code: c})
}

// RecordAuthCodeIssue records on a redeemed code what was issued with it,
// so that a reuse of the code revokes it: the refresh-token family (""
// for none) and the access tokens. It is called in the transaction that
// redeemed the code.
func (tx *Tx) RecordAuthCodeIssue(code, familyID string, tokens ...IssuedToken) error {
	mac := tx.k.mac(codePurpose, code)
	var c AuthCode
	ok, err := tx.getJSON(bucketCodes, mac, &c)
	switch {
	case err != nil:
		return err
	case !ok:
		return ErrCodeInvalid
	case c.UsedAt == nil:
		return errors.New("authorization code: record what was issued after redeeming it")
	case familyID != "" && c.FamilyID != "" && familyID != c.FamilyID:
		return errors.New("authorization code: another refresh family was already issued with it")
	}
	for _, t := range tokens {
		if t.JTI == "" {
			return errors.New("authorization code: an issued token has no jti")
		}
	}
	if familyID != "" {
		c.FamilyID = familyID
	}
	c.AccessTokens = append(c.AccessTokens, tokens...)
	return tx.putJSON(bucketCodes, mac, &c)
}

// grantStands checks that a grant still stands for a user and client: the
// grant, its user (not disabled) and its client exist and agree. Anything
// else wraps ErrNotFound.
func (tx *Tx) grantStands(grantID, userID, clientID string) error {
	g, err := tx.grantByID(grantID)
	if err != nil {
		return err
	}
	if g == nil || g.UserID != userID || g.ClientID != clientID {
		return fmt.Errorf("grant %q of user %q to client %q: %w", grantID, userID, clientID, ErrNotFound)
	}
	u, err := tx.userByID(userID)
	if err != nil {
		return err
	}
	if u == nil || u.Disabled {
		return fmt.Errorf("user %q (removed or disabled): %w", userID, ErrNotFound)
	}
	ok, err := tx.exists(bucketClients, []byte(clientID))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("client %q: %w", clientID, ErrNotFound)
	}
	return nil
}
