package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxRawErrorBody bounds how much of a non-JSON error body an error message quotes.
const maxRawErrorBody = 512

// APIError is an error answer of the control plane. It reads Kuma 2.x error
// bodies ({title, detail, invalid_parameters}) and the older shape
// ({details, causes}).
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Title is the short summary, for example "Could not process a resource".
	Title string
	// Detail explains what happened, for example "Resource is not valid".
	Detail string
	// InvalidParameters names each offending field.
	InvalidParameters []InvalidParameter
	// Body is the raw body, kept when it is not a JSON error document.
	Body string
	// Method and URL are the request that failed.
	Method, URL string
}

// InvalidParameter is one field problem reported by the server.
type InvalidParameter struct {
	// Field is the path of the field, for example "spec.to[0].default.idleTimeout".
	Field string `json:"field"`
	// Reason says what is wrong.
	Reason string `json:"reason"`
}

// Error prints the error as kumactl does: "<title> (<detail>)", then each
// invalid field as "field: reason" on its own, indented line. Without a
// title it prints "(<status>): <body>".
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Title == "" {
		fmt.Fprintf(&b, "(%d): %s", e.Status, e.Body)
	} else {
		fmt.Fprintf(&b, "%s (%s)", e.Title, e.Detail)
	}
	for _, p := range e.InvalidParameters {
		b.WriteString("\n  ")
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Reason)
	}
	return b.String()
}

// IsNotFound reports whether err is (or wraps) an API answer 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsConflict reports whether err is (or wraps) an API answer 409, as a
// conditional write on a stale version gets.
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// StatusOf returns the HTTP status of an *APIError in err's chain, or 0.
func StatusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// errorBody is every error field a Kuma-dialect server may write.
type errorBody struct {
	Title             string             `json:"title"`
	Detail            string             `json:"detail"`
	InvalidParameters []InvalidParameter `json:"invalid_parameters"`
	Details           string             `json:"details"`
	Causes            []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"causes"`
}

func parseAPIError(method, url string, status int, body []byte) *APIError {
	e := &APIError{Status: status, Method: method, URL: url}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		e.Body = quoteBody(body)
		return e
	}
	e.Title, e.Detail, e.InvalidParameters = eb.Title, eb.Detail, eb.InvalidParameters
	if e.Detail == "" {
		e.Detail = eb.Details
	}
	if len(e.InvalidParameters) == 0 {
		for _, c := range eb.Causes {
			e.InvalidParameters = append(e.InvalidParameters, InvalidParameter{Field: c.Field, Reason: c.Message})
		}
	}
	if e.Title == "" && e.Detail == "" && len(e.InvalidParameters) == 0 {
		e.Body = quoteBody(body)
	} else if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	return e
}

// quoteBody trims a raw body for an error message.
func quoteBody(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > maxRawErrorBody {
		cut := maxRawErrorBody
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
