package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// Error is the body of every error answer, in the shape Kuma 2.x writes:
// kumactl reads title, detail and invalid_parameters; older clients read
// details and causes.
type Error struct {
	// Type is always "/std-errors".
	Type string `json:"type"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Title is a short summary.
	Title string `json:"title"`
	// Detail explains what happened.
	Detail string `json:"detail"`
	// InvalidParameters names each offending field.
	InvalidParameters []InvalidParameter `json:"invalid_parameters,omitempty"`
	// Details repeats Detail for older clients.
	Details string `json:"details"`
	// Causes repeats InvalidParameters for older clients.
	Causes []Cause `json:"causes,omitempty"`
}

// InvalidParameter is one field problem.
type InvalidParameter struct {
	// Field is the path of the field.
	Field string `json:"field"`
	// Reason says what is wrong.
	Reason string `json:"reason"`
}

// Cause is one field problem in the older shape.
type Cause struct {
	// Field is the path of the field.
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
}

func newError(status int, title, detail string, fields validate.Errors) *Error {
	e := &Error{Type: "/std-errors", Status: status, Title: title, Detail: detail, Details: detail}
	for _, f := range fields {
		e.InvalidParameters = append(e.InvalidParameters, InvalidParameter{Field: f.Field, Reason: f.Message})
		e.Causes = append(e.Causes, Cause{Field: f.Field, Message: f.Message})
	}
	return e
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// invalid answers 400 for field problems in a request.
func invalid(w http.ResponseWriter, fields validate.Errors) {
	writeError(w, newError(http.StatusBadRequest, "Could not process a resource", "Resource is not valid", fields))
}

// badRequest answers 400 for a malformed request without field paths.
func badRequest(w http.ResponseWriter, detail string) {
	writeError(w, newError(http.StatusBadRequest, "Bad Request", detail, nil))
}

// storeError maps a manager/store error onto an HTTP answer. title names the
// operation ("Could not retrieve a resource").
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, title string, err error) {
	var verr *manager.ValidationError
	var serr *store.Error
	detail := err.Error()
	if errors.As(err, &serr) {
		detail = serr.Error()
	}
	switch {
	case errors.As(err, &verr):
		invalid(w, verr.Errors)
	case errors.Is(err, manager.ErrMeshNotFound):
		mesh := ""
		if serr != nil {
			mesh = serr.Key.Name
		}
		writeError(w, newError(http.StatusNotFound, "Mesh not found", fmt.Sprintf("mesh %q does not exist; create it first", mesh), nil))
	case errors.Is(err, store.ErrNotFound):
		writeError(w, newError(http.StatusNotFound, title, "Not found: "+detail, nil))
	case errors.Is(err, manager.ErrReadOnly):
		writeError(w, newError(http.StatusMethodNotAllowed, title, detail+": it is written by the control plane", nil))
	case errors.Is(err, manager.ErrMeshInUse):
		writeError(w, newError(http.StatusConflict, title, detail, nil))
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrAlreadyExists):
		writeError(w, newError(http.StatusConflict, title, detail+"; read it again and retry", nil))
	case errors.Is(err, store.ErrUnavailable):
		writeError(w, newError(http.StatusServiceUnavailable, title, "the store is unavailable; retry later (a write cut off by the outage may or may not have been applied: read it back first)", nil))
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		writeError(w, newError(499, title, "request cancelled", nil))
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, newError(http.StatusInternalServerError, title, "internal error; see the control plane log", nil))
	}
}

func logWriteFailure(log *slog.Logger, err error) {
	if err != nil {
		log.Debug("writing response failed", "error", err)
	}
}
