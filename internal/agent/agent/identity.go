package agent

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/outpost-edge/outpost/internal/agent/userdata"
	"github.com/outpost-edge/outpost/pki"
)

// Files in the state directory.
const (
	fileKey      = "host.key"
	fileCert     = "host.crt"
	fileCA       = "ca.crt"
	fileIdentity = "identity.json"
	fileSpec     = "spec.json"
)

// identityFile is identity.json: who the hub knows this host as.
type identityFile struct {
	HostID  string `json:"hostID"`
	Project string `json:"project,omitempty"`
	// IssuedAt is when the current certificate was stored.
	IssuedAt time.Time `json:"issuedAt,omitzero"`
}

// creds is an enrolled identity: the client certificate for the host key and
// the hub CA it chains to. It is immutable; renewal makes a new one.
type creds struct {
	cert    *x509.Certificate
	certPEM []byte
	tls     tls.Certificate
	project string
}

// store keeps the host's identity in its state directory. Every file is
// written atomically, so a crash leaves the old or the new identity.
type store struct {
	dir string
}

func (s store) path(name string) string { return filepath.Join(s.dir, name) }

// loadOrCreateKey returns the host key, making it on first start. The key
// never changes afterwards: the hub knows the host by its hash, and a
// pending enrollment must be repeated with the same key.
func (s store) loadOrCreateKey() (crypto.Signer, error) {
	p := s.path(fileKey)
	data, err := os.ReadFile(p)
	if err == nil {
		key, err := pki.ParseKey(data)
		if err != nil {
			return nil, fmt.Errorf("host key %s: %w", p, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read host key: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, fmt.Errorf("make host key: %w", err)
	}
	pemKey, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := pki.WriteFileAtomic(p, pemKey, 0o600); err != nil {
		return nil, fmt.Errorf("save host key: %w", err)
	}
	return key, nil
}

// loadCA returns the pinned hub CA, or nil before the first enrollment.
func (s store) loadCA() (*x509.CertPool, []byte, error) {
	data, err := os.ReadFile(s.path(fileCA))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read hub CA: %w", err)
	}
	certs, err := userdata.ParseCertificates(string(data))
	if err != nil {
		return nil, nil, fmt.Errorf("hub CA %s: %w", s.path(fileCA), err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, data, nil
}

// loadCreds returns the stored identity if it is still usable for hostID:
// a certificate for this key and host, chaining to the pinned CA and not
// expired. Anything less means enrolling again, so it returns nil and why.
func (s store) loadCreds(hostID string, key crypto.Signer, ca *x509.CertPool, now time.Time) (*creds, string) {
	if ca == nil {
		return nil, "no hub CA yet"
	}
	certPEM, err := os.ReadFile(s.path(fileCert))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "no certificate yet"
	}
	if err != nil {
		return nil, err.Error()
	}
	c, err := checkCert(certPEM, hostID, key, ca, now)
	if err != nil {
		return nil, err.Error()
	}
	var id identityFile
	if data, err := os.ReadFile(s.path(fileIdentity)); err == nil {
		if err := json.Unmarshal(data, &id); err != nil {
			return nil, fmt.Sprintf("identity.json: %v", err)
		}
	}
	if id.HostID != hostID {
		return nil, fmt.Sprintf("identity.json names host %q", id.HostID)
	}
	c.project = id.Project
	return c, ""
}

// checkCert makes sure a certificate the hub issued (or one read back from
// disk) is for this host and key and chains to the CA, so the agent never
// pins or presents something that cannot work.
func checkCert(certPEM []byte, hostID string, key crypto.Signer, ca *x509.CertPool, now time.Time) (*creds, error) {
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("host certificate: %w", err)
	}
	if cert.Subject.CommonName != hostID {
		return nil, fmt.Errorf("host certificate is for %q, not %q", cert.Subject.CommonName, hostID)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("host certificate is not for the host key")
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("host certificate expired at %s", cert.NotAfter.Format(time.RFC3339))
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       ca,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("host certificate does not chain to the hub CA: %w", err)
	}
	return &creds{
		cert:    cert,
		certPEM: certPEM,
		tls:     tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert},
	}, nil
}

// saveCreds stores a newly issued identity: the CA first, so a certificate
// on disk always has its CA beside it.
func (s store) saveCreds(c *creds, caPEM []byte, hostID string, now time.Time) error {
	if caPEM != nil {
		if err := pki.WriteFileAtomic(s.path(fileCA), caPEM, 0o644); err != nil {
			return fmt.Errorf("save hub CA: %w", err)
		}
	}
	if err := pki.WriteFileAtomic(s.path(fileCert), c.certPEM, 0o644); err != nil {
		return fmt.Errorf("save host certificate: %w", err)
	}
	data, err := json.MarshalIndent(identityFile{HostID: hostID, Project: c.project, IssuedAt: now.UTC()}, "", "  ")
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(s.path(fileIdentity), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	return nil
}

// dropCert forgets the certificate, keeping the key and the pinned CA, so
// the next start enrolls again.
func (s store) dropCert() error {
	if err := os.Remove(s.path(fileCert)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove host certificate: %w", err)
	}
	return nil
}

// renewAt is when 2/3 of the certificate's lifetime has passed.
func renewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life * 2 / 3)
}
