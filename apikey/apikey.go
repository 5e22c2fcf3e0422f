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

// A vault's prefixes: the one rule for them, which keymint init, serve --dev
// and bench/fill follow. API keys take the vault's key prefix and client
// secrets the key prefix followed by [ClientSecretMark], so that a secret
// tells which kind it is, and both must pass [ValidatePrefix].
const (
	// DefaultKeyPrefix is the key prefix of a vault made without one.
	DefaultKeyPrefix = "km"
	// ClientSecretMark follows the key prefix in the client secret prefix.
	ClientSecretMark = "cs"
	// MaxKeyPrefixLen is the longest key prefix: its client secret prefix
	// must still be at most [MaxPrefixLen].
	MaxKeyPrefixLen = MaxPrefixLen - len(ClientSecretMark)
)

// KeyPrefixRule says in words what [ValidateKeyPrefix] accepts, for help and
// error messages.
var KeyPrefixRule = fmt.Sprintf("1 to %d lowercase letters and digits, starting with a letter", MaxKeyPrefixLen)

// ValidateKeyPrefix checks a vault's key prefix: a valid prefix of at most
// [MaxKeyPrefixLen] characters.
func ValidateKeyPrefix(keyPrefix string) error {
	if ValidatePrefix(keyPrefix) != nil || len(keyPrefix) > MaxKeyPrefixLen {
		return fmt.Errorf("%w %q: use %s", ErrPrefix, keyPrefix, KeyPrefixRule)
	}
	return nil
}

// ClientSecretPrefix returns the client secret prefix of a vault whose key
// prefix is keyPrefix.
func ClientSecretPrefix(keyPrefix string) string { return keyPrefix + ClientSecretMark }

// Errors returned by [Parse], [ValidatePrefix] and [ValidateKeyPrefix].
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
	sum := checksum(body)
	return body + string(sum[:]), nil
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
	if sum := checksum(body); string(sum[:]) != secret[len(secret)-ChecksumLen:] {
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

func checksum(body string) [ChecksumLen]byte {
	v := crc32.ChecksumIEEE([]byte(body))
	var out [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return out // an array, not a string: checking a secret allocates nothing
}

// FindSecrets returns the spans [start, end) of s that are shaped like a
// keymint secret or a JWT, in order and without overlap: what must not be
// shown in a message, a log line or a name. It looks at shape only, never at
// the checksum, since a mistyped secret is still mostly a secret:
//
//   - a secret is a prefix of 1 to [MaxPrefixLen] letters and digits
//     starting with a letter (any vault's prefix, in either case: a secret
//     typed in capitals is still one), '_', and at least [RandomLen] base62
//     characters: a whole secret, one with characters added, or one cut by
//     up to its checksum. keymint's ids (16 and 22 characters after the '_')
//     and JWT key ids (43 base64url characters in all) are too short to
//     match.
//   - a JWT is "eyJ" (the base64url of `{"`) and at least 7 more base64url
//     characters, then at least two '.', each followed by any base64url.
//
// A span runs on over the base64url characters and dots that follow the
// shape (less trailing dots), so nothing glued to a secret, such as a second
// secret or the rest of a token, is left showing.
func FindSecrets(s string) [][2]int {
	var spans [][2]int
	noJWT := 0 // no JWT starts before this: where the last failed try's run ends
	for i := 0; i < len(s); {
		end := secretAt(s, i)
		if end < 0 && i >= noJWT && strings.HasPrefix(s[i:], jwtStart) {
			if end = jwtAt(s, i); end < 0 {
				noJWT = runEnd(s, i)
			}
		}
		if end < 0 {
			i++
			continue
		}
		end = runEnd(s, end)
		for s[end-1] == '.' {
			end--
		}
		spans = append(spans, [2]int{i, end})
		i = end
	}
	return spans
}

// Mask returns s with every span [FindSecrets] reports replaced by a hint
// that tells what was there without any of it: a secret keeps its prefix,
// which is not secret ("km_****"), and a JWT becomes "eyJ****". Text with
// nothing secret-shaped in it is returned unchanged.
func Mask(s string) string {
	spans := FindSecrets(s)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp[0]])
		if strings.HasPrefix(s[sp[0]:], jwtStart) {
			b.WriteString(jwtStart + masked)
		} else {
			u := sp[0] + strings.IndexByte(s[sp[0]:sp[1]], '_')
			b.WriteString(s[sp[0] : u+1])
			b.WriteString(masked)
		}
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

const (
	masked      = "****"
	jwtStart    = "eyJ"
	jwtMinStart = 10 // "eyJhIjoxfQ" is {"a":1}: no header is shorter
)

// secretAt returns the end of the secret-shaped run that starts at s[i], or
// -1: a prefix of 1 to MaxPrefixLen letters and digits starting with a
// letter, '_', then RandomLen or more base62 characters.
func secretAt(s string, i int) int {
	if !isLetter(s[i]) {
		return -1
	}
	j := i + 1
	for j < len(s) && j-i <= MaxPrefixLen && isBase62(s[j]) {
		j++
	}
	if j-i > MaxPrefixLen || j >= len(s) || s[j] != '_' {
		return -1
	}
	k := j + 1
	for k < len(s) && isBase62(s[k]) {
		k++
	}
	if k-(j+1) < RandomLen {
		return -1
	}
	return k
}

// jwtAt returns the end of the JWT-shaped run that starts at s[i], or -1.
// When it is -1, no JWT starts anywhere before [runEnd](s, i) either: one
// would have a shorter first segment, or fewer dots after it.
func jwtAt(s string, i int) int {
	if !strings.HasPrefix(s[i:], jwtStart) {
		return -1
	}
	j := i + len(jwtStart)
	for j < len(s) && isBase64URL(s[j]) {
		j++
	}
	if j-i < jwtMinStart {
		return -1
	}
	dots := 0
	for j < len(s) && (isBase64URL(s[j]) || s[j] == '.') {
		if s[j] == '.' {
			dots++
		}
		j++
	}
	if dots < 2 {
		return -1
	}
	return j
}

// runEnd returns the end of the run of base64url characters and dots that
// starts at s[i].
func runEnd(s string, i int) int {
	for i < len(s) && (isBase64URL(s[i]) || s[i] == '.') {
		i++
	}
	return i
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

func isBase62(c byte) bool { return isLetter(c) || c >= '0' && c <= '9' }

func isBase64URL(c byte) bool { return isBase62(c) || c == '-' || c == '_' }
