package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
)

// UpstreamTLS builds the TLS client configuration easgate uses towards the
// Exchange CAS servers. trustedCAs is a PEM bundle (empty: the system
// roots); serverName overrides the name checked in the CAS certificate
// (empty: the host of the upstream URL, filled in by the dialer);
// clientCert/clientKey are an optional PEM pair for mutual TLS (clientKey
// empty: the key is in clientCert). insecure disables server verification;
// the caller must log a warning when it is set.
func UpstreamTLS(trustedCAs, serverName, clientCert, clientKey string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: insecure, //nolint:gosec // explicit admin choice, warned by the caller
	}
	if trustedCAs != "" {
		data, err := readFileBounded(trustedCAs)
		if err != nil {
			return nil, fmt.Errorf("certs: upstream trusted CAs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("certs: upstream trusted CAs %s: no PEM CERTIFICATE blocks found", trustedCAs)
		}
		cfg.RootCAs = pool
	}
	if clientKey != "" && clientCert == "" {
		return nil, fmt.Errorf("certs: upstream client key %s given without a client certificate", clientKey)
	}
	if clientCert != "" {
		c, err := loadCertFiles(CertFiles{Certificate: clientCert, Key: clientKey}, io.Discard)
		if err != nil {
			return nil, fmt.Errorf("certs: upstream client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{*c}
	}
	return cfg, nil
}
