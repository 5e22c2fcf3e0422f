// Package password hashes and checks the passwords of the users who sign
// in at /authorize: argon2id (RFC 9106) in the PHC string format
// ("$argon2id$v=19$m=65536,t=3,p=4$salt$hash"), which the vault stores as
// it is. It is the one place keymint touches a password: `keymint user add`
// and `user passwd` hash with it, the sign-in page checks with it.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's costs.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// Default are the parameters new hashes get: OWASP's first recommended
// configuration for argon2id (19 MiB, 2 passes, 1 lane). RFC 9106's
// second option (64 MiB, 3 passes, 4 lanes) took some 380ms a check on a
// loaded 2-core machine, which a thousand sign-ins a minute cannot afford;
// this takes about an eighth of that (BenchmarkVerifyDefault: 46ms on the same machine) and still makes each
// guess against a stolen vault cost 19 MiB of memory. A hash records its
// parameters, so raising them later needs no migration (see NeedsRehash).
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// Limits of a password: at least MinLength characters (NIST SP 800-63B
// §5.1.1.2), at most MaxLength bytes, so a huge one cannot be sent to make
// the server hash it.
const (
	MinLength = 8
	MaxLength = 1024
)

const (
	saltLen = 16
	keyLen  = 32
)

// Errors. None quotes a password or a hash.
var (
	ErrTooShort  = fmt.Errorf("password is shorter than %d characters", MinLength)
	ErrTooLong   = fmt.Errorf("password is longer than %d bytes", MaxLength)
	ErrNotUTF8   = errors.New("password is not valid UTF-8")
	ErrBadHash   = errors.New("stored password hash is not an argon2id PHC string keymint can check")
	ErrMismatch  = errors.New("wrong password")
	errZeroParam = errors.New("argon2id parameters must be positive")
)

// Check validates a new password: long enough, not too long, UTF-8.
func Check(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return ErrNotUTF8
	case len(pw) > MaxLength:
		return ErrTooLong
	case utf8.RuneCountInString(pw) < MinLength:
		return ErrTooShort
	}
	return nil
}

// Hash returns the PHC string of pw under a new random salt, with p.
func Hash(pw string, p Params) (string, error) {
	if err := Check(pw); err != nil {
		return "", err
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 {
		return "", errZeroParam
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify reports whether pw is the password of the PHC string phc: nil if
// so, ErrMismatch if not, ErrBadHash if phc cannot be checked. The hash is
// compared in constant time.
func Verify(phc, pw string) error {
	p, salt, want, err := parse(phc)
	if err != nil {
		return err
	}
	if len(pw) > MaxLength {
		return ErrMismatch
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// Dummy is a hash of no one's password, to check a password against when
// the user does not exist, so that an unknown user costs the same time as
// a wrong password and the answer does not tell them apart.
func Dummy(p Params) string {
	h, err := Hash("no user has this password", p)
	if err != nil {
		panic(err) // only with zero parameters, a programming error
	}
	return h
}

// NeedsRehash reports whether phc was made with other parameters than p,
// so that a sign-in can store a new hash once it knows the password.
func NeedsRehash(phc string, p Params) bool {
	got, _, _, err := parse(phc)
	return err != nil || got != p
}

// maxMemory bounds the memory cost a stored hash may ask for (4 GiB), so a
// doctored record cannot make a check exhaust the server.
const maxMemory = 4 * 1024 * 1024

func parse(phc string) (Params, []byte, []byte, error) {
	parts := strings.Split(phc, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, ErrBadHash
	}
	var p Params
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || n == 0 {
			return Params{}, nil, nil, ErrBadHash
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return Params{}, nil, nil, ErrBadHash
			}
			p.Threads = uint8(n)
		default:
			return Params{}, nil, nil, ErrBadHash
		}
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > maxMemory || p.Time > 64 {
		return Params{}, nil, nil, ErrBadHash
	}
	salt, err1 := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return Params{}, nil, nil, ErrBadHash
	}
	return p, salt, key, nil
}
