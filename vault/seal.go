package vault

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealVersion is the first byte of every sealed value, so the record
// encoding can change without a new vault format.
const sealVersion byte = 1

// keys holds what is derived from the data key. The data key itself is only
// used for derivation.
type keys struct {
	aead    cipher.AEAD
	hmacKey []byte
	check   []byte // identifies the data key in meta without revealing it
}

func deriveKeys(dataKey []byte) (*keys, error) {
	derive := func(info string) ([]byte, error) {
		return hkdf.Key(sha256.New, dataKey, nil, "keymint/v1 "+info, 32)
	}
	sealKey, err := derive("record seal")
	if err != nil {
		return nil, fmt.Errorf("derive seal key: %w", err)
	}
	hmacKey, err := derive("index hmac")
	if err != nil {
		return nil, fmt.Errorf("derive hmac key: %w", err)
	}
	check, err := derive("key check")
	if err != nil {
		return nil, fmt.Errorf("derive key check: %w", err)
	}
	aead, err := chacha20poly1305.NewX(sealKey)
	if err != nil {
		return nil, fmt.Errorf("init aead: %w", err)
	}
	return &keys{aead: aead, hmacKey: hmacKey, check: check}, nil
}

// associatedData binds a sealed value to its vault, bucket and key.
func associatedData(vaultID []byte, bucket string, key []byte) []byte {
	ad := make([]byte, 0, 8+len(vaultID)+len(bucket)+len(key)+2)
	ad = append(ad, "keymint\x00"...)
	ad = append(ad, vaultID...)
	ad = append(ad, 0)
	ad = append(ad, bucket...)
	ad = append(ad, 0)
	return append(ad, key...)
}

func (k *keys) seal(vaultID []byte, bucket string, key, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(plaintext)+k.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	nonce := out[1:]
	return k.aead.Seal(out, nonce, plaintext, associatedData(vaultID, bucket, key)), nil
}

func (k *keys) open(vaultID []byte, bucket string, key, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+chacha20poly1305.NonceSizeX+k.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w (bucket %s)", ErrCorrupt, bucket)
	}
	nonce := sealed[1 : 1+chacha20poly1305.NonceSizeX]
	plain, err := k.aead.Open(nil, nonce, sealed[1+chacha20poly1305.NonceSizeX:], associatedData(vaultID, bucket, key))
	if err != nil {
		return nil, fmt.Errorf("%w (bucket %s)", ErrCorrupt, bucket)
	}
	return plain, nil
}

// mac is the index key for a name or secret, domain-separated by purpose so a
// name can never collide with a secret.
func (k *keys) mac(purpose, value string) []byte {
	m := hmac.New(sha256.New, k.hmacKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}
