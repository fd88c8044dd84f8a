package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestClientCertificateChain(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateCA(dir, "test")
	if err != nil || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("CA not persisted: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode: %v %v", fi.Mode(), err)
	}
	key, _ := NewKey()
	csrPEM, err := NewCSR(key, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR([]byte(csrPEM))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, cert, err := ca.SignClient(csr, "edge-1", "enr-42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseCertificate(certPEM)
	if err != nil || !parsed.Equal(cert) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate does not chain to the CA: %v", err)
	}
	if got := EnrollmentID(cert); got != "enr-42" {
		t.Fatalf("enrollment ID %q", got)
	}
	h1, _ := PublicKeyHash(key.Public())
	h2, _ := PublicKeyHash(cert.PublicKey)
	if h1 != h2 {
		t.Fatal("certificate does not carry the CSR's key")
	}
	other, _ := NewCA("other")
	if _, err := cert.Verify(x509.VerifyOptions{Roots: other.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("certificate verified against a foreign CA")
	}
}

func TestParseCSRRejectsTampering(t *testing.T) {
	key, _ := NewKey()
	csrPEM, _ := NewCSR(key, "edge-1")
	bad := []byte(csrPEM)
	bad[len(bad)/2] ^= 0x01
	if _, err := ParseCSR(bad); err == nil {
		t.Fatal("tampered CSR accepted")
	}
	if _, err := ParseCSR([]byte("not pem")); err == nil {
		t.Fatal("garbage accepted")
	}
}
