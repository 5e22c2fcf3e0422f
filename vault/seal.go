package vault

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealVersion is the first byte of every sealed value, so the record
// encoding can change without a new vault format.
const sealVersion byte = 1

// keys holds what is derived from the data key, and the index key sealed
// under it. The data key itself is only used for derivation.
type keys struct {
	aead  cipher.AEAD
	check []byte // identifies the data key in meta without revealing it
	// indexKey keys the HMAC index of names and secrets. It is random and
	// stored sealed (format 2), so that a new data key keeps every issued
	// secret valid; a format-1 vault's, which was derived, is kept as is.
	indexKey []byte
	// treeKey keys the leaf digests and shardKey the choice of shard
	// (tree.go).
	treeKey, shardKey []byte
	// legacyIndexKey is what format 1 derived as the index key.
	legacyIndexKey []byte
	// macs pools keyed index hashers (see mac).
	macs sync.Pool
}

func deriveKeys(dataKey []byte) (*keys, error) {
	k := &keys{}
	var sealKey []byte
	for _, d := range []struct {
		info string
		dst  *[]byte
	}{
		{"keymint/v1 record seal", &sealKey},
		{"keymint/v1 key check", &k.check},
		{"keymint/v1 index hmac", &k.legacyIndexKey},
		{"keymint/v2 tree", &k.treeKey},
		{"keymint/v2 shard", &k.shardKey},
	} {
		b, err := hkdf.Key(sha256.New, dataKey, nil, d.info, 32)
		if err != nil {
			return nil, fmt.Errorf("derive %s key: %w", d.info, err)
		}
		*d.dst = b
	}
	aead, err := chacha20poly1305.NewX(sealKey)
	if err != nil {
		return nil, fmt.Errorf("init aead: %w", err)
	}
	k.aead = aead
	return k, nil
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
//
// Keyed hashers are pooled: a server computes one per request, and keying
// an HMAC costs more than hashing a secret.
func (k *keys) mac(purpose, value string) []byte {
	m, _ := k.macs.Get().(*keyedMAC)
	if m == nil || !bytes.Equal(m.key, k.indexKey) {
		m = &keyedMAC{key: k.indexKey, h: hmac.New(sha256.New, k.indexKey)}
	}
	m.h.Reset()
	m.in = append(append(append(m.in[:0], purpose...), 0), value...)
	m.h.Write(m.in)
	sum := m.h.Sum(nil)
	k.macs.Put(m)
	return sum
}

// keyedMAC is a pooled HMAC with the key it was made with, and a buffer
// for its input, so that a MAC allocates only its result.
type keyedMAC struct {
	key []byte
	h   hash.Hash
	in  []byte
}
