package mail_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/outbox"
)

// selfSigned returns a TLS configuration for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtpd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// smtp:// requires STARTTLS: a server that does not offer it (or whose
// offer was stripped on the way) gets no message, and the handler reports
// the server unavailable, so the email waits instead of going out in
// clear. A server that offers it gets the message over TLS.
func TestSMTPRequiresSTARTTLS(t *testing.T) {
	srv := mustSMTPD(t)
	plainURL := strings.TrimSuffix(srv.URL(), "?tls=none") // smtp://host:port, nothing said
	f := newFixture(t, plainURL)
	d := delivery(t, newRequest("ada", "ada@example.com"))
	err := f.handle(d)
	if !outbox.IsUnavailable(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("without STARTTLS: %v, want Unavailable naming STARTTLS", err)
	}
	if n := len(srv.Received()); n != 0 || f.rows("") != 0 {
		t.Fatalf("the server received %d messages in clear, %d rows", n, f.rows(""))
	}

	cfg, pool := selfSigned(t)
	mail.TrustForTest(pool)
	t.Cleanup(func() { mail.TrustForTest(nil) })
	tlsSrv := mustSMTPDWithTLS(t, cfg)
	g := newFixture(t, strings.TrimSuffix(tlsSrv.URL(), "?tls=none"))
	g.mustHandle(d)
	got := tlsSrv.Received()
	if len(got) != 1 || !got[0].TLS {
		t.Fatalf("received %+v, want one message over STARTTLS", got)
	}
}

// Plain SMTP only when the URL says so: ?tls=opportunistic sends in clear
// to a server without STARTTLS, and so does ?tls=none.
func TestSMTPPlainOnlyWhenTheURLSaysSo(t *testing.T) {
	srv := mustSMTPD(t)
	for i, q := range []string{"?tls=opportunistic", "?tls=none"} {
		f := newFixture(t, strings.TrimSuffix(srv.URL(), "?tls=none")+q)
		f.mustHandle(delivery(t, newRequest("bob", "bob@example.com")))
		if got := srv.Received(); len(got) != i+1 || got[i].TLS {
			t.Fatalf("%s: received %+v", q, got)
		}
	}
}
