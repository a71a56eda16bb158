package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
)

// authError is a refused request: an HTTP status and a gRPC code for the
// same refusal, and a message that says what to do.
type authError struct {
	httpStatus int
	code       codes.Code
	msg        string
	cause      error
}

// Error returns the message for the caller.
func (e *authError) Error() string { return e.msg }

// Unwrap returns the underlying error (a dptoken refusal, a store error).
func (e *authError) Unwrap() error { return e.cause }

// grpcStatus returns the refusal as a gRPC status error.
func (e *authError) grpcStatus() error { return status.Error(e.code, e.msg) }

func refuse(httpStatus int, code codes.Code, cause error, format string, args ...any) *authError {
	return &authError{httpStatus: httpStatus, code: code, msg: fmt.Sprintf(format, args...), cause: cause}
}

// tokenError maps a dptoken refusal: a token for another mesh, another
// dataplane or other tags is a permission problem (the caller is someone,
// just not this dataplane); every other refusal means the caller is not
// authenticated. Anything else is the control plane's problem.
func tokenError(key resource.Key, err error) *authError {
	switch {
	case errors.Is(err, dptoken.ErrWrongMesh), errors.Is(err, dptoken.ErrWrongName), errors.Is(err, dptoken.ErrTagsNotAllowed):
		return refuse(http.StatusForbidden, codes.PermissionDenied, err, "dataplane %s: %v", key, err)
	case errors.Is(err, dptoken.ErrInvalidToken):
		return refuse(http.StatusUnauthorized, codes.Unauthenticated, err, "dataplane %s: %v", key, err)
	}
	return refuse(http.StatusServiceUnavailable, codes.Unavailable, err, "dataplane %s: verifying the dataplane token failed: %v", key, err)
}

// bearer returns the token of an "authorization: Bearer <token>" value.
func bearer(value string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// headerToken returns the token of the stream's authorization metadata.
func headerToken(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(bootstrap.AuthorizationHeader) {
		if t := bearer(v); t != "" {
			return t
		}
	}
	return ""
}

// nodeString returns a string field of the node metadata.
func nodeString(node *corev3.Node, key string) string {
	return node.GetMetadata().GetFields()[key].GetStringValue()
}

// authenticate checks that token lets the dataplane key connect: the
// dataplane must exist (its tags are checked against the token) and the
// token must verify for its mesh and name. It never reveals whether a
// dataplane exists to a caller without a valid token for it.
func (s *Server) authenticate(ctx context.Context, key resource.Key, token string) (*resource.Resource, *authError) {
	if token == "" {
		return nil, refuse(http.StatusUnauthorized, codes.Unauthenticated, dptoken.ErrInvalidToken,
			"dataplane %s: no dataplane token: send it as \"authorization: Bearer <token>\" (generate one with `atollctl generate dataplane-token --mesh %s --name %s`)",
			key, key.Mesh, key.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	defer cancel()
	dp, err := s.opts.Resources.Get(ctx, resource.DataplaneType, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if _, err := s.opts.Tokens.Verify(ctx, token, key.Mesh, key.Name, nil); err != nil && !errors.Is(err, dptoken.ErrTagsNotAllowed) {
			return nil, tokenError(key, err)
		}
		return nil, refuse(http.StatusNotFound, codes.NotFound, err,
			"dataplane %s does not exist: create it first (atollctl apply -f) or start atoll-dp with --dataplane-file", key)
	case err != nil:
		return nil, refuse(http.StatusServiceUnavailable, codes.Unavailable, err, "dataplane %s: reading it failed: %v", key, err)
	}
	spec, ok := dp.Spec.(*dataplane.Spec)
	if !ok {
		return nil, refuse(http.StatusInternalServerError, codes.Internal, nil, "dataplane %s has an unexpected spec %T", key, dp.Spec)
	}
	if _, err := s.opts.Tokens.Verify(ctx, token, key.Mesh, key.Name, pki.DataplaneTags(spec)); err != nil {
		return nil, tokenError(key, err)
	}
	return dp, nil
}
