package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/outpost-edge/outpost/pki"
)

const serverCertTTL = 365 * 24 * time.Hour

// loadOrIssueServerCert returns the hub's serving certificate from dir,
// issuing a new one when there is none, it expires within 30 days, it was
// signed by another CA, or it lacks one of hosts.
func loadOrIssueServerCert(ca *pki.CA, dir string, hosts []string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf, perr := x509.ParseCertificate(cert.Certificate[0])
		if perr == nil && time.Until(leaf.NotAfter) > 30*24*time.Hour && leaf.CheckSignatureFrom(ca.Cert) == nil && covers(leaf, hosts) {
			return cert, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		// A torn or foreign pair: replace it rather than refuse to start.
		_ = err
	}
	key, err := pki.NewKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := ca.SignServer(key, hosts, serverCertTTL)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := pki.WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := pki.WriteFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load issued server certificate: %w", err)
	}
	return cert, nil
}

func covers(leaf *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(leaf.DNSNames, h) {
			return false
		}
	}
	return true
}
