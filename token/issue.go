package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/keymint/keymint/vault"
)

// CountError is a failure of the count step of [Issue]: the use was
// refused (a limit is reached) or could not be counted. Nothing was
// signed. Its message is the count's own.
type CountError struct{ Err error }

func (e *CountError) Error() string { return e.Err.Error() }
func (e *CountError) Unwrap() error { return e.Err }

// ErrNoSigner reports an [Issue] without a signer, refused before
// anything is counted.
var ErrNoSigner = errors.New("no signer to sign the token with")

// Issue is the one way keymint issues a token, for `keymint token issue`
// and the server's /token alike. Its steps run in this order, and a step
// that fails ends it, so that nothing after it happens:
//
//  1. the client may be used now, as [vault.Usable] decides with no
//     secret: it exists and has not expired. (A caller that authenticated
//     the client by its secret, as /token does, asked the same function
//     with the secret first.)
//  2. the request is within what the client may have: the claims are
//     decided from the client and req (its grant type, scopes within its
//     own, a lifetime up to its token TTL, an audience among its own),
//     with issuer and now. A refusal wraps [ErrUnauthorizedClient],
//     [ErrInvalidScope] or [ErrInvalidRequest]; no use is counted.
//  3. one use is counted, by count: the caller's counting strategy
//     (quota.Consume inside the CLI's vault transaction, a quota.Leaser
//     for the server; token does not know quota). count returns nil when
//     the use is counted and allowed, else why not, which Issue returns in
//     a [*CountError]; nothing is signed.
//  4. the claims are signed by signer into the token response.
//
// A nil signer is refused with [ErrNoSigner] before step 1.
func Issue(c *vault.Client, req Request, issuer string, now time.Time, signer *Signer, count func() error) (Claims, Response, error) {
	switch {
	case signer == nil:
		return Claims{}, Response{}, ErrNoSigner
	case count == nil:
		return Claims{}, Response{}, errors.New("issue token: no count step")
	}
	var cred *vault.Credential
	if c != nil {
		cred = &c.Credential
	}
	if err := vault.Usable(vault.KindClient, cred, nil, now); err != nil {
		return Claims{}, Response{}, err
	}
	claims, err := claimsFor(c, req, issuer, now)
	if err != nil {
		return Claims{}, Response{}, err
	}
	if err := count(); err != nil {
		return Claims{}, Response{}, &CountError{Err: err}
	}
	resp, err := Mint(signer, claims, now)
	if err != nil {
		return Claims{}, Response{}, fmt.Errorf("sign token: %w", err)
	}
	return claims, resp, nil
}
