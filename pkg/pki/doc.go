// Package pki is Atoll's workload identity layer: per-mesh certificate
// authorities and the workload certificates they issue.
//
// # Identities
//
// Every mesh is its own SPIFFE trust domain. The CA of mesh "demo" carries
// the URI SAN spiffe://demo; a workload certificate of a dataplane carries one
// URI SAN spiffe://demo/<service> per kuma.io/service it serves (see ID). When
// the caller passes the dataplane's tags, the certificate also carries one
// kuma://<tag>/<value> URI per tag value, the form Kuma uses, so that inbound
// authorization (MeshTrafficPermission from[] with MeshSubset tags) can match
// on a peer's tags without asking the control plane. SPIFFE URIs always come
// first: consumers that look only at the first URI SAN see the SPIFFE id.
//
// # Key types (decisions)
//
//   - Builtin CAs use RSA, 2048 bits unless the mesh sets
//     conf.caCert.RSAbits, as Kuma does, so CA material moved between Kuma and
//     Atoll keeps working and operators meet what they expect. A CA key is
//     generated once per mesh and backend; its cost does not matter.
//   - Workload keys default to ECDSA P-256: a workload certificate is issued
//     per dataplane and renewed every ~19 h, and generating an RSA key
//     dominates issuance: from an RSA 2048 CA one certificate takes ~0.8 ms
//     with a P-256 key and ~44 ms with an RSA 2048 key on a 2-core EPYC
//     (BenchmarkIssueWorkloadCert).
//     Envoy, gRPC-Go and Go's crypto/tls all accept P-256 leaves signed by an
//     RSA CA. KeyRSA2048 remains available for peers that need RSA leaves.
//   - Private keys are written as PKCS#8 PEM; PKCS#1 and SEC 1 keys are
//     accepted when loading provided CAs.
//
// # Lifetimes
//
// Builtin CAs live 10 years unless conf.caCert.expiration says otherwise.
// Workload certificates live 24 h unless dpCert.rotation.expiration says
// otherwise; NotBefore is backdated by up to 5 minutes (never more than a
// tenth of the lifetime) to absorb clock skew, NotAfter never passes the CA's
// own NotAfter, and RenewAt gives the moment (4/5 of the lifetime) at which a
// certificate should be replaced.
//
// # Storage
//
// Builtin CAs are kept as two secrets of the mesh, named as Kuma names them:
// "<mesh>.ca-builtin-cert-<backend>" and "<mesh>.ca-builtin-key-<backend>".
// Manager reaches them through SecretStore, a two-method interface that the
// control plane adapts to its resource store (see package secretstore).
package pki
