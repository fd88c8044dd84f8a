// Package secrets encrypts the hub's secrets at rest (cluster join tokens,
// later registry credentials and SSH keys) with AES-256-GCM under one key
// kept outside the database, so a copy of the database alone reveals none.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/outpost-edge/outpost/pki"
)

// prefix marks the format, so the scheme can change without guessing.
const prefix = "v1:"

// Box seals and opens secrets.
type Box struct {
	aead cipher.AEAD
}

// LoadOrCreateKey reads a base64 key file, making one (mode 0600) when it
// does not exist. Hub replicas sharing a database must share this file.
func LoadOrCreateKey(path string) (*Box, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("make secret key: %w", err)
		}
		if err := pki.WriteFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, err
		}
		return New(key)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret key %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("secret key %s is not base64: %w", path, err)
	}
	return New(key)
}

// New makes a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext; context binds the ciphertext to where it is
// stored (e.g. "cluster/p1/store-17"), so it cannot be moved elsewhere.
func (b *Box) Seal(plaintext, context string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return prefix + base64.StdEncoding.EncodeToString(ct), nil
}

// Open decrypts what Seal made for the same context.
func (b *Box) Open(sealed, context string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", errors.New("sealed secret has an unknown format")
	}
	ct, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(ct) < b.aead.NonceSize() {
		return "", errors.New("sealed secret is damaged")
	}
	pt, err := b.aead.Open(nil, ct[:b.aead.NonceSize()], ct[b.aead.NonceSize():], []byte(context))
	if err != nil {
		return "", fmt.Errorf("open sealed secret for %s: wrong key or context: %w", context, err)
	}
	return string(pt), nil
}
