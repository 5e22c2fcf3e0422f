package token

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keymint/keymint/vault"
)

// Request is what a caller asks of a client's token. Zero values take
// the client's own: all its scopes, its audience, its token TTL.
type Request struct {
	Scope    []string
	Audience []string
	TTL      time.Duration
	// User, when set, makes the token a user's, issued by the
	// authorization-code or refresh grant.
	User *UserRequest
}

// UserRequest is what a user let a client have: the scopes granted at
// /authorize (already decided to be within what the client may ask for),
// and when the user signed in.
type UserRequest struct {
	UserID   string
	Scopes   []string
	AuthTime time.Time
	// JTI, if set, is the token's jti: one the caller recorded before
	// issuing (what a code issued, so that its reuse revokes it). Else
	// a new one, see [NewJTI].
	JTI string
}

// Response is the successful token response of RFC 6749 §5.1, with its
// members and no others: clients give meaning to names outside it, and
// reading one of keymint's as their own breaks them. (Authlib, for one,
// takes a member expires_at for epoch seconds, and its fetch_token failed
// on the RFC 3339 time keymint once sent there.) Where a time of expiry is
// wanted, as for the CLI's output, take the claims' ExpiresAt.
type Response struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// claimsFor checks a request against what the client allows and returns the
// claims of the token to mint: the client_credentials grant, scopes only
// within the client's, a lifetime up to the client's TTL, an audience among
// the client's. Step 2 of [Issue], which has decided that the client may
// be used now.
func claimsFor(c *vault.Client, req Request, issuerURL string, now time.Time) (Claims, error) {
	grant, subject := GrantClientCredentials, c.ID
	if req.User != nil {
		grant, subject = GrantAuthorizationCode, req.User.UserID
	}
	if !slices.Contains(c.GrantTypes, grant) {
		return Claims{}, fmt.Errorf("%w: client %s is not a %s client", ErrUnauthorizedClient, c.Name, grant)
	}
	if subject == "" {
		return Claims{}, fmt.Errorf("%w: no user", ErrInvalidRequest)
	}
	scope := c.Scopes
	switch {
	case req.User != nil:
		scope = req.User.Scopes
	case len(req.Scope) > 0:
		for _, s := range req.Scope {
			if !slices.Contains(c.Scopes, s) {
				return Claims{}, fmt.Errorf("%w: %q", ErrInvalidScope, s)
			}
		}
		scope = req.Scope
	}
	ttl := c.TokenTTL
	if req.TTL != 0 {
		if req.TTL < time.Second || req.TTL > c.TokenTTL {
			return Claims{}, fmt.Errorf("%w: lifetime %s is outside 1s to the client's %s", ErrInvalidRequest, req.TTL, c.TokenTTL)
		}
		ttl = req.TTL
	}
	audience := c.Audience
	if len(req.Audience) > 0 {
		for _, a := range req.Audience {
			if len(c.Audience) > 0 && !slices.Contains(c.Audience, a) {
				return Claims{}, fmt.Errorf("%w: audience %q is not one of the client's", ErrInvalidRequest, a)
			}
		}
		audience = req.Audience
	}
	if len(audience) == 0 {
		// RFC 9068 requires aud; with none configured the token is for the
		// issuer's own resources.
		audience = []string{issuerURL}
	}
	iat := now.Truncate(time.Second)
	claims := Claims{
		Issuer:    issuerURL,
		Subject:   subject,
		Audience:  audience,
		IssuedAt:  iat,
		ExpiresAt: iat.Add(ttl),
		ID:        NewJTI(),
		ClientID:  c.ID,
		Scope:     scope,
	}
	if req.User != nil {
		claims.AuthTime = req.User.AuthTime.Truncate(time.Second)
		if req.User.JTI != "" {
			claims.ID = req.User.JTI
		}
	}
	return claims, nil
}

// Mint signs claims and returns the token response: step 4 of [Issue],
// which is how keymint issues tokens; alone, for what signs claims made
// elsewhere (bench/baseline).
func Mint(s *Signer, c Claims, now time.Time) (Response, error) {
	token, err := s.Sign(c)
	if err != nil {
		return Response{}, err
	}
	return Response{
		AccessToken: token,
		TokenType:   "Bearer",
		ExpiresIn:   int64(c.ExpiresAt.Sub(now.Truncate(time.Second)) / time.Second),
		Scope:       strings.Join(c.Scope, " "),
	}, nil
}

// FromVault converts a stored signing key.
func FromVault(k *vault.SigningKey) (SigningKey, error) {
	alg, err := ParseAlg(k.Alg)
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{ID: k.ID, Alg: alg, PrivateKey: k.PrivateKey, CreatedAt: k.CreatedAt}, nil
}

// ToVault converts a new signing key for storage.
func ToVault(k SigningKey) *vault.SigningKey {
	return &vault.SigningKey{ID: k.ID, Alg: string(k.Alg), PrivateKey: k.PrivateKey, CreatedAt: k.CreatedAt}
}

// PublishedKeySet builds the key set of every key published at now: the
// active key and retired keys whose tokens may still be live.
func PublishedKeySet(keys []*vault.SigningKey, now time.Time) (*KeySet, error) {
	var published []SigningKey
	for _, k := range keys {
		if !k.Published(now) {
			continue
		}
		sk, err := FromVault(k)
		if err != nil {
			return nil, err
		}
		published = append(published, sk)
	}
	return NewKeySet(published)
}

// ActiveSigner returns a signer for the active key among keys.
func ActiveSigner(keys []*vault.SigningKey) (*Signer, error) {
	for _, k := range keys {
		if k.Active() {
			sk, err := FromVault(k)
			if err != nil {
				return nil, err
			}
			return NewSigner(sk)
		}
	}
	return nil, fmt.Errorf("no active signing key: %w; %s", vault.ErrNotFound, vault.SigningKeyHint)
}
