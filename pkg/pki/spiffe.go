package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// SPIFFEScheme is the URI scheme of SPIFFE ids.
const SPIFFEScheme = "spiffe"

// tagURIScheme is the scheme of Kuma-style tag URIs (kuma://<tag>/<value>).
const tagURIScheme = "kuma"

// ID is a workload's SPIFFE identity in a mesh: spiffe://<mesh>/<service>.
// An ID with an empty Service is the mesh's trust domain (spiffe://<mesh>),
// the identity its CA carries.
type ID struct {
	// Mesh is the trust domain.
	Mesh string
	// Service is the kuma.io/service value; empty for the trust domain.
	Service string
}

// String returns the SPIFFE URI.
func (id ID) String() string {
	if id.Service == "" {
		return SPIFFEScheme + "://" + id.Mesh
	}
	return SPIFFEScheme + "://" + id.Mesh + "/" + id.Service
}

// URL returns the SPIFFE URI as a URL, checking that mesh and service make a
// well-formed URI that reads back unchanged.
func (id ID) URL() (*url.URL, error) {
	if id.Mesh == "" {
		return nil, errors.New("SPIFFE id needs a mesh")
	}
	s := id.String()
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("SPIFFE id %q is not a valid URI: %w", s, err)
	}
	back, err := ParseID(u)
	if err != nil || back != id {
		return nil, fmt.Errorf("SPIFFE id %q is not a valid URI: mesh and service must not contain characters such as '/', '?', '#', '%%' or spaces", s)
	}
	return u, nil
}

// ParseID reads a SPIFFE URI of the form spiffe://<mesh>[/<service>].
func ParseID(u *url.URL) (ID, error) {
	if u == nil || u.Scheme != SPIFFEScheme {
		return ID{}, fmt.Errorf("%v is not a SPIFFE id", u)
	}
	if u.Host == "" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" || u.RawPath != "" {
		return ID{}, fmt.Errorf("%v is not a well-formed SPIFFE id", u)
	}
	svc := strings.TrimPrefix(u.Path, "/")
	if u.Path != "" && svc == "" {
		return ID{}, fmt.Errorf("%v is not a well-formed SPIFFE id: empty path", u)
	}
	return ID{Mesh: u.Host, Service: svc}, nil
}

// ParseIDString reads a SPIFFE id from text.
func ParseIDString(s string) (ID, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("%q is not a SPIFFE id: %w", s, err)
	}
	return ParseID(u)
}

// IDsOf returns the SPIFFE ids among cert's URI SANs, in certificate order.
func IDsOf(cert *x509.Certificate) []ID {
	var ids []ID
	for _, u := range cert.URIs {
		if id, err := ParseID(u); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// TagsOf returns the tag values carried by cert's kuma://<tag>/<value>
// URIs, as put there by IssueWorkloadCert when the request carries tags.
// Values are sorted.
func TagsOf(cert *x509.Certificate) map[string][]string {
	tags := map[string][]string{}
	for _, u := range cert.URIs {
		if u.Scheme != tagURIScheme {
			continue
		}
		rest := strings.TrimPrefix(u.String(), tagURIScheme+"://")
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			continue
		}
		v, err := url.PathUnescape(rest[i+1:])
		if err != nil || v == "" {
			continue
		}
		tags[rest[:i]] = append(tags[rest[:i]], v)
	}
	for _, vs := range tags {
		slices.Sort(vs)
	}
	return tags
}

// tagURI builds kuma://<tag>/<value>. The value is path-escaped, so a '/' in
// it is written as %2F and the last '/' always separates tag from value.
func tagURI(tag, value string) (*url.URL, error) {
	if tag == "" || value == "" {
		return nil, fmt.Errorf("tag %q=%q cannot be written as a kuma:// URI: empty key or value", tag, value)
	}
	s := tagURIScheme + "://" + tag + "/" + url.PathEscape(value)
	u, err := url.Parse(s)
	if err != nil || u.String() != s {
		return nil, fmt.Errorf("tag %q=%q cannot be written as a kuma:// URI", tag, value)
	}
	return u, nil
}
