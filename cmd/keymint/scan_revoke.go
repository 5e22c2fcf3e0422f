package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
)

// What a secret found is in this vault (classify), and `scan --revoke`,
// which removes or rotates the live ones in one transaction.

// classify looks each distinct secret up in the vault, in one read
// transaction. The vault is opened only when there is something to look
// up; if it cannot be, every secret is unverified and the error returned.
func (a *app) classify(hits []scanHit) (map[string]scanResult, error) {
	results := map[string]scanResult{}
	if len(hits) == 0 {
		return results, nil
	}
	err := a.view(func(tx *vault.Tx) error {
		for _, h := range hits {
			if _, ok := results[h.secret]; ok {
				continue
			}
			r, err := lookupSecret(tx, h.secret)
			if err != nil {
				return err
			}
			results[h.secret] = r
		}
		return nil
	})
	if err != nil {
		for _, h := range hits {
			results[h.secret] = scanResult{status: scanUnverified}
		}
		return results, err
	}
	return results, nil
}

// lookupSecret says what secret is in this vault, by the HMAC lookups the
// vault has for each kind: [vault.Tx.KeyBySecret], [vault.Tx.ClientBySecret]
// (both deciding with vault.Usable) and [vault.Tx.RefreshToken].
func lookupSecret(tx *vault.Tx, secret string) (scanResult, error) {
	k, err := tx.KeyBySecret(secret)
	if r, done, err := credentialResult(scanKindKey, err, func() (string, string) { return k.ID, k.Name }); done {
		return r, err
	}
	c, err := tx.ClientBySecret(secret)
	if r, done, err := credentialResult(scanKindClient, err, func() (string, string) { return c.ID, c.Name }); done {
		return r, err
	}
	rt, err := tx.RefreshToken(secret)
	switch {
	case err == nil:
		return scanResult{status: scanLive, kind: scanKindRefresh, id: rt.FamilyID, name: "of client " + rt.ClientID + " for user " + rt.UserID, family: rt.FamilyID}, nil
	case errors.Is(err, vault.ErrRefreshInvalid):
		return scanResult{status: scanUnknown}, nil
	default:
		return scanResult{}, err
	}
}

// credentialResult reads the answer of a key or client lookup by secret:
// done when it found the credential (live, retired or expired) or failed.
func credentialResult(kind string, err error, idName func() (string, string)) (scanResult, bool, error) {
	var ee *vault.ExpiredError
	var de *vault.DisabledError
	switch {
	case err == nil:
		id, name := idName()
		return scanResult{status: scanLive, kind: kind, id: id, name: name}, true, nil
	case errors.As(err, &ee):
		return scanResult{status: scanExpired, kind: kind, id: ee.ID, name: ee.Name}, true, nil
	case errors.As(err, &de):
		// Disabled is not gone: enabled again, the secret works again.
		return scanResult{status: scanLive, kind: kind, id: de.ID, name: de.Name}, true, nil
	case errors.Is(err, vault.ErrSecretRetired):
		return scanResult{status: scanRetired, kind: kind}, true, nil
	case errors.Is(err, vault.ErrNotFound):
		return scanResult{}, false, nil
	default:
		return scanResult{}, true, err
	}
}

func (a *app) printHits(hits []scanHit, results map[string]scanResult) error {
	if a.json() {
		enc := json.NewEncoder(a.io.Out)
		enc.SetEscapeHTML(false)
		for _, h := range hits {
			r := results[h.secret]
			if err := enc.Encode(scanJSON{File: h.file, Line: h.line, Column: h.col, Secret: apikey.Mask(h.secret), Status: r.status, Kind: r.kind, ID: r.id, Name: r.name}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, h := range hits {
		r := results[h.secret]
		if _, err := fmt.Fprintf(a.io.Out, "%s:%d:%d: %s %s\n", h.file, h.line, h.col, apikey.Mask(h.secret), describe(r)); err != nil {
			return err
		}
	}
	return nil
}

// describe says in words what a secret found is.
func describe(r scanResult) string {
	what := ""
	switch {
	case r.kind == scanKindRefresh:
		what = "refresh token (family " + r.id + ", " + r.name + ")"
	case r.kind != "" && r.id != "":
		what = r.kind + " " + r.name + " (" + r.id + ")"
	case r.kind != "":
		what = "a " + r.kind + " secret"
	}
	switch r.status {
	case scanLive:
		return "live: " + what
	case scanExpired:
		return "expired: " + what
	case scanRetired:
		return "retired: a rotated " + r.kind + " secret whose grace has passed"
	case scanUnverified:
		return "unverified: the vault could not be opened to check it"
	default:
		return "unknown to this vault (another vault's, or removed or revoked)"
	}
}

// liveCredentials returns the distinct credentials of the live secrets
// found, in the order first found.
func liveCredentials(hits []scanHit, results map[string]scanResult) []scanResult {
	var out []scanResult
	seen := map[string]bool{}
	for _, h := range hits {
		r := results[h.secret]
		if r.status != scanLive || seen[r.kind+" "+r.id] {
			continue
		}
		seen[r.kind+" "+r.id] = true
		out = append(out, r)
	}
	return out
}

// revokeFound removes (or, with --grace, rotates) the live credentials
// found, after asking on a terminal unless --yes, in one transaction that
// checks again that each is still live: all or none.
func (a *app) revokeFound(live []scanResult, o scanOptions) ([]scanActionJSON, error) {
	var names []string
	for _, r := range live {
		names = append(names, credentialWords(r))
	}
	verb, after := "remove", ""
	if o.graceSet {
		verb, after = "rotate", ", the secrets found working for "+shortDuration(o.grace)+" more"
	}
	question := fmt.Sprintf("%s %s%s?", strings.ToUpper(verb[:1])+verb[1:], strings.Join(names, ", "), after)
	if err := a.confirm(o.yes, question); err != nil {
		return nil, err
	}
	var acted []scanActionJSON
	err := a.update(func(tx *vault.Tx) error {
		acted = acted[:0]
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		for _, r := range live {
			act, err := revokeOne(tx, settings, r, o)
			if err != nil {
				return fmt.Errorf("%s: %w; nothing was changed", credentialWords(r), err)
			}
			acted = append(acted, act)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := a.printActions(acted, o); err != nil {
		return nil, err
	}
	return acted, nil
}

func credentialWords(r scanResult) string {
	if r.kind == scanKindRefresh {
		return "refresh token family " + r.id
	}
	return r.kind + " " + r.name + " (" + r.id + ")"
}

// revokeOne removes, rotates or revokes one credential found live.
func revokeOne(tx *vault.Tx, settings vault.Settings, r scanResult, o scanOptions) (scanActionJSON, error) {
	act := scanActionJSON{Kind: r.kind, ID: r.id, Name: r.name}
	switch {
	case r.kind == scanKindRefresh:
		// A refresh token cannot be rotated by hand: its family is
		// revoked, with or without --grace, and the user signs in again.
		act.Action, act.Name = "revoked", ""
		return act, tx.RevokeRefreshFamily(r.family)
	case !o.graceSet && r.kind == scanKindKey:
		act.Action = "removed"
		_, err := tx.DeleteKeys(r.id)
		return act, err
	case !o.graceSet:
		act.Action = "removed"
		_, err := tx.DeleteClients(r.id)
		return act, err
	}
	act.Action = "rotated"
	retires := tx.Now().Add(o.grace).UTC().Truncate(time.Second)
	act.RetiresAt = &retires
	var err error
	if r.kind == scanKindKey {
		if act.Secret, err = apikey.Generate(settings.KeyPrefix); err != nil {
			return act, err
		}
		_, err = tx.RotateKey(r.id, act.Secret, o.grace)
		return act, err
	}
	if act.Secret, err = apikey.Generate(settings.ClientSecretPrefix); err != nil {
		return act, err
	}
	_, err = tx.RotateClient(r.id, act.Secret, o.grace)
	return act, err
}

func (a *app) printActions(acted []scanActionJSON, o scanOptions) error {
	if a.json() {
		enc := json.NewEncoder(a.io.Out)
		enc.SetEscapeHTML(false)
		for _, act := range acted {
			if err := enc.Encode(act); err != nil {
				return err
			}
		}
		return nil
	}
	for _, act := range acted {
		var err error
		switch act.Action {
		case "rotated":
			_, err = fmt.Fprintf(a.io.Out, "rotated %s %s (%s); %s; new secret, shown only this once: %s\n", act.Kind, act.Name, act.ID, oldSecretFor(o.grace), act.Secret)
		case "revoked":
			_, err = fmt.Fprintf(a.io.Out, "revoked refresh token family %s\n", act.ID)
		default:
			_, err = fmt.Fprintf(a.io.Out, "removed %s %s (%s)\n", act.Kind, act.Name, act.ID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
