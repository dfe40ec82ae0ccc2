package harness

// TLS in tests: certificates made on the spot with crypto/x509 (nothing
// checked in, nothing that expires in the repository) and a coordinator
// listening on tls+tcp:// (docs/TLS.md).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are PEM files in a test directory: a CA, a server certificate
// for DNS:localhost signed by it, a client certificate signed by it, and
// an unrelated second CA (OtherCA) with a client certificate of its own.
// Keys are mode 0600.
type TLSFiles struct {
	Dir                       string
	CA, OtherCA               string
	ServerCert, ServerKey     string
	ClientCert, ClientKey     string
	StrangerCert, StrangerKey string // signed by OtherCA
}

type tlsIdent struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var tlsSerial int64

func makeIdent(t testing.TB, cn string, ca *tlsIdent, dns []string, isCA bool) (*tlsIdent, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tlsSerial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano() + tlsSerial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     dns,
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &tlsIdent{cert, key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// NewTLSFiles writes a fresh set of certificates into a test directory.
func NewTLSFiles(t testing.TB) *TLSFiles {
	t.Helper()
	f := &TLSFiles{Dir: t.TempDir()}
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(f.Dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, caPEM, _ := makeIdent(t, "tributary test CA", nil, nil, true)
	other, otherPEM, _ := makeIdent(t, "unrelated CA", nil, nil, true)
	_, srv, srvKey := makeIdent(t, "localhost", ca, []string{"localhost"}, false)
	_, cli, cliKey := makeIdent(t, "agent", ca, nil, false)
	_, str, strKey := makeIdent(t, "stranger", other, nil, false)
	f.CA = write("ca.pem", caPEM, 0o644)
	f.OtherCA = write("other-ca.pem", otherPEM, 0o644)
	f.ServerCert = write("server.pem", srv, 0o644)
	f.ServerKey = write("server.key", srvKey, 0o600)
	f.ClientCert = write("client.pem", cli, 0o644)
	f.ClientKey = write("client.key", cliKey, 0o600)
	f.StrangerCert = write("stranger.pem", str, 0o644)
	f.StrangerKey = write("stranger.key", strKey, 0o600)
	return f
}

// StartCoordinatorTLS runs tributary-coordinator with both addresses on
// tls+tcp://localhost:PORT (a DNS name: mbedTLS does not match IP
// addresses), its identity from f, plus the extra flags (e.g.
// --tls-client-ca) and environment. cliArgs are added to every CLI call
// (at least --tls-ca f.CA; with --tls-client-ca also a client
// certificate).
func StartCoordinatorTLS(t testing.TB, f *TLSFiles, env []string, cliArgs []string, extra ...string) *Coordinator {
	t.Helper()
	c := &Coordinator{
		Listen:  fmt.Sprintf("tls+tcp://localhost:%d", FreePort(t)),
		Control: fmt.Sprintf("tls+tcp://localhost:%d", FreePort(t)),
		CLIArgs: cliArgs,
		env:     env,
		t:       t,
	}
	c.args = append([]string{"--listen", c.Listen, "--control", c.Control, "--heartbeat", "500ms",
		"--tls-cert", f.ServerCert, "--tls-key", f.ServerKey}, extra...)
	c.start(t)
	return c
}
