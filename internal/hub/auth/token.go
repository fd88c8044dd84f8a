package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/outpost-edge/outpost/internal/errs"
)

// Token prefixes tell secrets apart at a glance (and to secret scanners).
const (
	PrefixAPIToken          = "opt"
	PrefixRegistrationToken = "ort"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Secret is a freshly made token: the full string to hand out once, its
// public ID (the store key) and the hash to keep.
type Secret struct {
	Token string
	ID    string
	Hash  string
}

// NewSecret makes a token "<prefix>_<id>_<secret>" with a 80-bit ID and a
// 256-bit secret. The secret is random, so a plain sha256 is enough to store
// it: there is nothing to brute-force that a slow hash would protect.
func NewSecret(prefix string) (Secret, error) {
	id := make([]byte, 10)
	sec := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return Secret{}, fmt.Errorf("make token id: %w", err)
	}
	if _, err := rand.Read(sec); err != nil {
		return Secret{}, fmt.Errorf("make token secret: %w", err)
	}
	s := Secret{ID: idEncoding.EncodeToString(id)}
	secret := idEncoding.EncodeToString(sec)
	s.Token = prefix + "_" + s.ID + "_" + secret
	s.Hash = hashSecret(secret)
	return s, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ParseToken splits a token into its ID and secret; err wraps
// errs.ErrUnauthenticated for anything not shaped like a token of prefix.
func ParseToken(prefix, token string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(token, prefix+"_")
	if !ok {
		return "", "", fmt.Errorf("token is not an %s token: %w", prefix, errs.ErrUnauthenticated)
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || id == "" || len(secret) < 32 || len(id) > 64 || len(secret) > 128 {
		return "", "", fmt.Errorf("malformed %s token: %w", prefix, errs.ErrUnauthenticated)
	}
	return id, secret, nil
}

// CheckSecret compares a presented secret with a stored hash in constant time.
func CheckSecret(secret, storedHash string) bool {
	got := hashSecret(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1
}
