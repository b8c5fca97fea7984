package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// TLSConfig is the tls: part of the config.
//
//	tls:
//	  cert: /etc/camfeed/cert.pem   # with key: a certificate you have
//	  key: /etc/camfeed/key.pem
//	  self_signed: true             # or: make one on first start
//
// A self-signed certificate makes browsers warn once, but gives HTTPS on a
// LAN, which some browsers need before they allow WebRTC or a camera page
// from a non-localhost address.
type TLSConfig struct {
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	SelfSigned bool   `yaml:"self_signed"`
}

// Enabled reports whether HTTP should be served over TLS.
func (c TLSConfig) Enabled() bool { return c.Cert != "" || c.Key != "" || c.SelfSigned }

// Validate checks the combination of keys.
func (c TLSConfig) Validate() error {
	switch {
	case (c.Cert == "") != (c.Key == ""):
		return errors.New("tls: give both cert and key, or neither")
	case c.Cert != "" && c.SelfSigned:
		return errors.New("tls: self_signed makes its own certificate; remove it or cert and key")
	}
	return nil
}

// Self-signed certificate files, in the state directory.
const (
	SelfSignedCert = "tls-cert.pem"
	SelfSignedKey  = "tls-key.pem"
)

// StateDir is where camfeed keeps what it generates: $STATE_DIRECTORY
// under systemd (StateDirectory=camfeed, /var/lib/camfeed), otherwise
// the user's config directory (~/.config/camfeed).
func StateDir() (string, error) {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return filepath.SplitList(d)[0], nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("tls: %w", err)
	}
	return filepath.Join(d, "camfeed"), nil
}

// Load returns the server's TLS settings. With self_signed, the
// certificate in stateDir is made on first start (ECDSA P-256, ten years,
// for this host's names and addresses) and reused afterwards, so browsers
// remember the exception. Certificate files are re-read when they change
// (a renewed certificate needs no restart).
func (c TLSConfig) Load(stateDir string) (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cert, key := c.Cert, c.Key
	if c.SelfSigned {
		cert, key = filepath.Join(stateDir, SelfSignedCert), filepath.Join(stateDir, SelfSignedKey)
		if _, err := os.Stat(cert); errors.Is(err, os.ErrNotExist) {
			if err := generateSelfSigned(cert, key, hostNames()); err != nil {
				return nil, fmt.Errorf("tls: self-signed certificate: %w", err)
			}
		}
	}
	r := &certReloader{cert: cert, key: key}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}, nil
}

// certReloader serves a certificate and re-reads it when the file's
// modification time changes, checking at most once a minute.
type certReloader struct {
	cert, key string
	mu        sync.Mutex
	c         *tls.Certificate
	mod       time.Time
	checked   time.Time
}

func (r *certReloader) load() error {
	st, err := os.Stat(r.cert)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	r.c, r.mod = &c, st.ModTime()
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) > time.Minute {
		r.checked = time.Now()
		if st, err := os.Stat(r.cert); err == nil && !st.ModTime().Equal(r.mod) {
			r.load() // on error keep serving the old one
		}
	}
	return r.c, nil
}

func hostNames() []string {
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h, h+".local") // .local: mDNS, as Pi OS answers
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
				names = append(names, n.IP.String())
			}
		}
	}
	return append(names, "127.0.0.1", "::1")
}

func generateSelfSigned(certPath, keyPath string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[len(hosts)-1], Organization: []string{"camfeed self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(tmpl.DNSNames) > 0 {
		tmpl.Subject.CommonName = tmpl.DNSNames[len(tmpl.DNSNames)-1]
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o750); err != nil {
		return err
	}
	// The key first: a certificate without its key would be reused and fail.
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
