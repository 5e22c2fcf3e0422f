// Package apikey generates and checks keymint's secret format:
//
//	<prefix>_<43 base62 characters of randomness><6 base62 characters of CRC32>
//
// 43 base62 characters carry 256 bits of randomness. The CRC32 checksum lets a
// secret scanner, or `keymint key verify`, reject a mistyped or truncated
// secret offline, before any lookup in the vault; it is not a security
// boundary (the vault's HMAC comparison is).
package apikey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

const (
	// RandomLen is the number of base62 characters of randomness in a secret:
	// 62^43 > 2^256.
	RandomLen = 43
	// ChecksumLen is the number of base62 characters that encode the CRC32
	// checksum: 62^6 > 2^32.
	ChecksumLen = 6
	// MaxPrefixLen bounds a prefix so secrets stay pasteable.
	MaxPrefixLen = 16

	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Errors returned by [Parse] and [ValidatePrefix].
var (
	ErrMalformed = errors.New("not a keymint secret")
	ErrChecksum  = errors.New("checksum mismatch: the secret was mistyped or truncated")
	ErrPrefix    = errors.New("invalid prefix")
)

// Generate returns a new secret with the given prefix. The prefix must pass
// [ValidatePrefix].
func Generate(prefix string) (string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", err
	}
	random, err := RandomString(RandomLen)
	if err != nil {
		return "", err
	}
	body := prefix + "_" + random
	return body + checksum(body), nil
}

// RandomString returns n characters drawn uniformly from the base62 alphabet.
func RandomString(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps every character equally likely.
			if b >= 248 {
				continue
			}
			out = append(out, alphabet[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}

// Parse checks a secret's shape and checksum and returns its prefix. It does
// no lookup: a secret that parses may still be unknown to the vault.
func Parse(secret string) (prefix string, err error) {
	i := strings.LastIndexByte(secret, '_')
	if i < 0 {
		return "", ErrMalformed
	}
	prefix, rest := secret[:i], secret[i+1:]
	if ValidatePrefix(prefix) != nil || len(rest) != RandomLen+ChecksumLen {
		return "", ErrMalformed
	}
	for j := 0; j < len(rest); j++ {
		if strings.IndexByte(alphabet, rest[j]) < 0 {
			return "", ErrMalformed
		}
	}
	body := secret[:len(secret)-ChecksumLen]
	if checksum(body) != secret[len(secret)-ChecksumLen:] {
		return "", ErrChecksum
	}
	return prefix, nil
}

// ValidatePrefix accepts 1 to 16 lowercase letters and digits, starting with a
// letter. Underscores are excluded so the prefix ends at the last '_'.
func ValidatePrefix(prefix string) error {
	if prefix == "" || len(prefix) > MaxPrefixLen {
		return fmt.Errorf("%w %q: use 1 to %d lowercase letters and digits", ErrPrefix, prefix, MaxPrefixLen)
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		isLetter := c >= 'a' && c <= 'z'
		if !isLetter && (i == 0 || c < '0' || c > '9') {
			return fmt.Errorf("%w %q: use 1 to %d lowercase letters and digits, starting with a letter", ErrPrefix, prefix, MaxPrefixLen)
		}
	}
	return nil
}

func checksum(body string) string {
	v := crc32.ChecksumIEEE([]byte(body))
	var out [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return string(out[:])
}
