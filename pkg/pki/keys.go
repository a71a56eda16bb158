package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// KeyType selects the algorithm of a generated private key.
type KeyType int

const (
	// KeyECDSAP256 is an ECDSA key on NIST P-256, the default for workload
	// certificates.
	KeyECDSAP256 KeyType = iota
	// KeyRSA2048 is a 2048-bit RSA key.
	KeyRSA2048
)

// String names the key type.
func (t KeyType) String() string {
	switch t {
	case KeyECDSAP256:
		return "ECDSA P-256"
	case KeyRSA2048:
		return "RSA 2048"
	}
	return fmt.Sprintf("KeyType(%d)", int(t))
}

// PEM block types written and read by this package.
const (
	pemCertificate = "CERTIFICATE"
	pemPKCS8       = "PRIVATE KEY"
	pemPKCS1       = "RSA PRIVATE KEY"
	pemSEC1        = "EC PRIVATE KEY"
)

// Limits on RSA key sizes this package generates.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// GenerateKey returns a new private key of the given type.
func GenerateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case KeyECDSAP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating ECDSA P-256 key: %w", err)
		}
		return k, nil
	case KeyRSA2048:
		return generateRSA(2048)
	}
	return nil, fmt.Errorf("unknown key type %d", int(t))
}

func generateRSA(bits int) (crypto.Signer, error) {
	if bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA key size %d is out of range [%d, %d]", bits, minRSABits, maxRSABits)
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("generating %d-bit RSA key: %w", bits, err)
	}
	return k, nil
}

// EncodeKeyPEM returns key as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// ParseKeyPEM reads the first private key of data: PKCS#8, PKCS#1 (RSA) or
// SEC 1 (EC). Only RSA and ECDSA keys are accepted, the types Envoy and
// gRPC support for TLS.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case pemPKCS8:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case pemPKCS1:
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case pemSEC1:
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue // e.g. "EC PARAMETERS" before an EC key
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s PEM block: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T: only RSA and ECDSA keys are supported", key)
	}
}

// EncodeCertPEM returns certificate DER bytes as one PEM block.
func EncodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

// ParseCertsPEM reads every certificate of data, in order. Blocks of other
// types are skipped; no certificate at all is an error.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate block found")
	}
	return certs, nil
}

// KeyMatchesCert reports whether key is the private half of cert's public key.
func KeyMatchesCert(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// randomSerial returns a random positive 128-bit certificate serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
