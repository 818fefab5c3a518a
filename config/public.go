package config

import (
	"fmt"
	"net"
	"net/url"
)

// publicURLOf is CAIRN_PUBLIC_URL's default: where a browser on this
// machine reaches CAIRN_HTTP_ADDR. A wildcard host (":8080", "0.0.0.0",
// "::") is reached as localhost; an address that does not parse keeps the
// documented default (Validate reports the address).
func publicURLOf(httpAddr string) string {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil || !validPort(port) || port == "0" {
		return Default().PublicURL
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// PublicURLWarning says why the links Cairn sends out (CAIRN_PUBLIC_URL)
// probably do not reach its HTTP server (CAIRN_HTTP_ADDR), or "": when the
// public URL names this machine (localhost, a loopback address or the
// listen host) with another port than the one HTTP listens on. A public URL
// elsewhere (a proxy, a load balancer) is taken as meant.
func (c Config) PublicURLWarning() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return ""
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil || port == "0" {
		return ""
	}
	publicPort := u.Port()
	if publicPort == "" {
		publicPort = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ip := net.ParseIP(u.Hostname())
	local := u.Hostname() == "localhost" || ip != nil && ip.IsLoopback() || u.Hostname() == host
	if !local || publicPort == port {
		return ""
	}
	return fmt.Sprintf("CAIRN_PUBLIC_URL=%s points at this machine's port %s, but CAIRN_HTTP_ADDR=%s listens on port %s: links in emails and the console's address will not reach Cairn",
		c.PublicURL, publicPort, c.HTTPAddr, port)
}
