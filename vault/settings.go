package vault

const settingsKey = "vault"

// Settings are vault-wide choices made at init.
type Settings struct {
	// KeyPrefix starts every API key, as in km_...
	KeyPrefix string `json:"key_prefix"`
	// ClientSecretPrefix starts every client secret.
	ClientSecretPrefix string `json:"client_secret_prefix"`
	// Recipients are the public recipients the data key is encrypted to;
	// empty for a passphrase vault.
	Recipients []string `json:"recipients,omitempty"`
	// Issuer is the issuer identifier (iss) of the vault's tokens, which
	// the CLI mints and checks them under and `keymint serve` serves, unless
	// told otherwise. Empty when none was recorded, as in a vault made
	// before there was this setting: then a default applies. The vault does
	// not check it; token.CheckIssuer does, before it is recorded.
	Issuer string `json:"issuer,omitempty"`
}

// Settings returns the vault's settings.
func (tx *Tx) Settings() (Settings, error) {
	var s Settings
	ok, err := tx.getJSON(bucketSettings, []byte(settingsKey), &s)
	if err != nil {
		return s, err
	}
	if !ok {
		return s, ErrNotVault
	}
	return s, nil
}
