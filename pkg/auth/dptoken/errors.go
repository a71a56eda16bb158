package dptoken

import (
	"errors"
	"fmt"
)

// Errors of a refused token. Every refusal matches ErrInvalidToken and
// exactly one of the others; match them with errors.Is.
var (
	// ErrInvalidToken matches every refusal: answer 401 with the message.
	ErrInvalidToken = errors.New("invalid dataplane token")
	// ErrMalformed: not a JWT, or required claims or header fields missing.
	ErrMalformed = errors.New("malformed token")
	// ErrSignatureInvalid: not signed by a key of the dataplane's mesh.
	ErrSignatureInvalid = errors.New("signature is invalid")
	// ErrExpired: the token's exp has passed.
	ErrExpired = errors.New("token has expired")
	// ErrWrongMesh: the token was issued for another mesh.
	ErrWrongMesh = errors.New("token was issued for another mesh")
	// ErrWrongName: the token was issued for another dataplane.
	ErrWrongName = errors.New("token was issued for another dataplane")
	// ErrTagsNotAllowed: the dataplane carries tag values the token does not allow.
	ErrTagsNotAllowed = errors.New("dataplane tags are not allowed by the token")
	// ErrRevoked: the token's id is on the mesh's revocation list.
	ErrRevoked = errors.New("token has been revoked")
)

// rejection is a refused token: it matches ErrInvalidToken and its kind.
type rejection struct {
	kind error
	msg  string
}

// Error reads as a sentence for the user.
func (r *rejection) Error() string { return ErrInvalidToken.Error() + ": " + r.msg }

// Unwrap lets errors.Is match ErrInvalidToken and the specific kind.
func (r *rejection) Unwrap() []error { return []error{ErrInvalidToken, r.kind} }

func reject(kind error, format string, args ...any) error {
	return &rejection{kind: kind, msg: fmt.Sprintf(format, args...)}
}
