package kubeadm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strings"
)

// BootstrapToken maps the cluster's join secret to a kubeadm bootstrap
// token, "[a-z0-9]{6}.[a-z0-9]{16}" (see the package documentation).
func BootstrapToken(joinToken string) string {
	n := new(big.Int).SetBytes(mac(joinToken, "outpost kubeadm bootstrap token"))
	s := n.Text(36)
	if len(s) < 22 {
		s = strings.Repeat("0", 22-len(s)) + s
	}
	// The low digits: the top ones of a 256-bit number are not uniform.
	s = s[len(s)-22:]
	return s[:6] + "." + s[6:]
}

// CertificateKey maps the cluster's join secret to the key kubeadm
// encrypts the uploaded control-plane certificates with: 32 bytes, hex.
func CertificateKey(joinToken string) string {
	return hex.EncodeToString(mac(joinToken, "outpost kubeadm certificate key"))
}

func mac(key, label string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(label))
	return m.Sum(nil)
}
