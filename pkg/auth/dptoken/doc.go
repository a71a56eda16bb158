// Package dptoken issues and verifies dataplane tokens: the JWTs a
// universal dataplane (atoll-dp, or a proxyless workload's agent) presents to
// prove which dataplane of which mesh it is, at bootstrap and on every xDS
// stream.
//
// # Token
//
// A token is a JWT signed with a key of its mesh. Its claims are
//
//	mesh  the mesh (required)
//	name  the dataplane name; empty binds the token to the mesh only, as
//	      `kumactl generate dataplane-token --mesh M` without --name does
//	tags  optional allowed tag values, e.g. {"kuma.io/service": ["web"]}
//	jti   a random id (UUID), the handle for revocation
//	iat   issue time
//	exp   expiry; always present
//
// and its header carries "kid", the serial number of the signing key.
//
// # Decisions
//
//   - Expiry: tokens are valid for 10 years unless the request says
//     otherwise, the default Kuma documents for `--valid-for`. Every token
//     has an exp claim and tokens without one are refused, so a leaked token
//     is never valid forever; revocation covers the time before expiry.
//   - Signing keys are ECDSA P-256 (ES256): generation is instantaneous,
//     tokens are short, and signatures are cheap. Keys are PKCS#8 PEM in the
//     secret "dataplane-token-signing-key-<mesh>-<serial>", the name Kuma
//     uses; the first key has serial 1. RSA keys (Kuma's RS256 keys) placed in
//     such a secret are accepted too: the algorithm always follows the
//     stored key, never the token header.
//   - Rotation (a follow-up): the kid header names the key serial, so adding
//     "…-<mesh>-2" and issuing with the highest serial keeps tokens of key 1
//     valid until that secret is deleted. Issue currently signs with serial 1.
//   - Revocation: the secret "dataplane-token-revocations-<mesh>" holds
//     revoked token ids separated by commas or newlines, Kuma's format, so an
//     operator can also edit it by hand.
//   - Tags: for every tag key in the token, the dataplane must carry that tag
//     and all its values for it must be among the token's values.
//   - Verification is per mesh: a token is checked only with the keys of the
//     mesh the dataplane claims, so a token of mesh B never verifies for
//     mesh A.
//
// Every refusal matches ErrInvalidToken and one specific error (ErrMalformed,
// ErrSignatureInvalid, ErrExpired, ErrWrongMesh, ErrWrongName,
// ErrTagsNotAllowed, ErrRevoked) and reads as a sentence a user can act on.
// Other errors (the store is unreachable) match none of them.
package dptoken
