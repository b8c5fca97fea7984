package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

type secretKind int

const (
	kindNone secretKind = iota
	kindBcrypt
	kindArgon2id
	kindPlain
)

// secret is a parsed password setting.
type secret struct {
	kind  secretKind
	hash  []byte // bcrypt: the whole hash; argon2id: the key
	plain string
	// argon2id parameters
	salt         []byte
	time, memory uint32
	threads      uint8
}

func parseSecret(s string) (secret, error) {
	switch {
	case strings.HasPrefix(s, "plain:"):
		p := strings.TrimPrefix(s, "plain:")
		if p == "" {
			return secret{}, errors.New("plain: is empty")
		}
		return secret{kind: kindPlain, plain: p}, nil
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return secret{}, fmt.Errorf("not a valid bcrypt hash: %v", err)
		}
		return secret{kind: kindBcrypt, hash: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	}
	return secret{}, errors.New("not a bcrypt or argon2id hash; make one with camfeed passwd, or write plain:SECRET")
}

// parseArgon2id reads the PHC string format that the reference
// implementation prints: $argon2id$v=19$m=65536,t=3,p=4$SALT$KEY, with
// SALT and KEY in unpadded standard base64.
func parseArgon2id(s string) (secret, error) {
	f := strings.Split(s, "$")
	bad := errors.New("not an argon2id hash of the form $argon2id$v=19$m=M,t=T,p=P$SALT$KEY")
	if len(f) != 6 || f[2] != "v=19" {
		return secret{}, bad
	}
	sec := secret{kind: kindArgon2id}
	for _, kv := range strings.Split(f[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return secret{}, bad
		}
		switch k {
		case "m":
			sec.memory = uint32(n)
		case "t":
			sec.time = uint32(n)
		case "p":
			if n > 255 {
				return secret{}, bad
			}
			sec.threads = uint8(n)
		default:
			return secret{}, bad
		}
	}
	var err1, err2 error
	sec.salt, err1 = base64.RawStdEncoding.DecodeString(f[4])
	sec.hash, err2 = base64.RawStdEncoding.DecodeString(f[5])
	if err1 != nil || err2 != nil || sec.memory == 0 || sec.time == 0 || sec.threads == 0 || len(sec.hash) == 0 {
		return secret{}, bad
	}
	if sec.memory > 1<<20 { // 1 GiB: more would exhaust a Pi at the first login
		return secret{}, errors.New("argon2id memory over 1 GiB (m=1048576)")
	}
	return sec, nil
}

func (s secret) verify(pw string) bool {
	switch s.kind {
	case kindPlain:
		return constantEqual(s.plain, pw)
	case kindBcrypt:
		return bcrypt.CompareHashAndPassword(s.hash, []byte(pw)) == nil
	case kindArgon2id:
		k := argon2.IDKey([]byte(pw), s.salt, s.time, s.memory, s.threads, uint32(len(s.hash)))
		return subtle.ConstantTimeCompare(k, s.hash) == 1
	}
	return false
}

// HashPassword returns a bcrypt hash (cost 10) of pw for the config's
// password: key. bcrypt rather than argon2id by default because argon2id's
// memory cost is what makes it strong, and a Pi Zero has 512 MB.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("auth: empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return "", errors.New("auth: password longer than 72 bytes, which bcrypt cannot use")
	}
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	return string(h), nil
}

// HashPasswordArgon2id returns an argon2id hash with the parameters OWASP
// recommends for a small machine (19 MiB, 2 passes, 1 thread).
func HashPasswordArgon2id(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("auth: empty password")
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	const t, m, p = 2, 19 * 1024, 1
	k := argon2.IDKey([]byte(pw), salt, t, m, p, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(k)), nil
}

// NewToken makes a bearer token (32 random bytes, URL-safe base64) and the
// form to put in the config, sha256:HEX, so that the config never holds
// the token itself.
func NewToken() (token, configured string) {
	b := make([]byte, 32)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, "sha256:" + hex.EncodeToString(sum[:])
}
