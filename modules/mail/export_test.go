package mail

import "crypto/x509"

// TrustForTest makes senders built from now on trust pool's certificates,
// so a test's SMTP server can offer STARTTLS with a certificate of its own.
func TrustForTest(pool *x509.CertPool) { testRootCAs = pool }
