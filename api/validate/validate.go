// Package validate collects validation problems, each tied to the field path
// a user wrote (for example "spec.to[0].default.http.requestTimeout"), so that
// an API answer or CLI message can name every problem at once.
package validate

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Path is a field path in the notation users see in errors:
// dotted field names, [i] for list items and ["key"] for map keys.
type Path string

// Root is the empty path; Field on it yields a top-level name.
const Root Path = ""

// Field returns the path of a named field below p.
func (p Path) Field(name string) Path {
	if p == "" {
		return Path(name)
	}
	return p + "." + Path(name)
}

// Index returns the path of the i-th list item below p.
func (p Path) Index(i int) Path {
	return p + "[" + Path(strconv.Itoa(i)) + "]"
}

// Key returns the path of a map entry below p.
func (p Path) Key(k string) Path {
	return p + Path("["+strconv.Quote(k)+"]")
}

// String returns the path as text.
func (p Path) String() string { return string(p) }

// FieldError is one problem with one field.
type FieldError struct {
	// Field is the path of the offending field; empty for the document itself.
	Field string `json:"field"`
	// Message says what is wrong, in words a user can act on.
	Message string `json:"message"`
}

// Error returns "field: message".
func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Errors is a list of field problems. Its zero value holds none.
type Errors []FieldError

// Add records a problem with the field at p.
func (e *Errors) Add(p Path, format string, args ...any) {
	*e = append(*e, FieldError{Field: string(p), Message: fmt.Sprintf(format, args...)})
}

// Append records every problem of other.
func (e *Errors) Append(other Errors) { *e = append(*e, other...) }

// Prefix returns the problems with every field path placed below p.
func (e Errors) Prefix(p Path) Errors {
	if p == "" {
		return e
	}
	out := make(Errors, len(e))
	for i, fe := range e {
		if fe.Field == "" {
			fe.Field = string(p)
		} else if strings.HasPrefix(fe.Field, "[") {
			fe.Field = string(p) + fe.Field
		} else {
			fe.Field = string(p) + "." + fe.Field
		}
		out[i] = fe
	}
	return out
}

// Error joins the problems with "; ".
func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// OrNil returns e as an error, or nil when it holds no problem.
func (e Errors) OrNil() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

var (
	nameRe       = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)
	labelNameRe  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	labelValueRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?$`)
	dnsLabelRe   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// Name checks a resource name: 1–253 characters, lower-case letters, digits,
// '-', '.' and '_', starting and ending with a letter or digit.
func Name(p Path, name string) Errors {
	var errs Errors
	switch {
	case name == "":
		errs.Add(p, "must not be empty")
	case len(name) > 253:
		errs.Add(p, "must be at most 253 characters long")
	case !nameRe.MatchString(name):
		errs.Add(p, "%q is not a valid name: use lower-case letters, digits, '-', '.' and '_', starting and ending with a letter or digit", name)
	}
	return errs
}

// LabelKey checks a label or tag key in the Kubernetes form "[prefix/]name",
// where prefix is a DNS subdomain (for example "kuma.io/service").
func LabelKey(p Path, key string) Errors {
	var errs Errors
	prefix, name, hasPrefix := strings.Cut(key, "/")
	if !hasPrefix {
		name, prefix = prefix, ""
	}
	if hasPrefix {
		if prefix == "" || len(prefix) > 253 {
			errs.Add(p, "key %q: prefix must be a DNS subdomain of at most 253 characters", key)
		} else {
			for _, part := range strings.Split(prefix, ".") {
				if !dnsLabelRe.MatchString(part) {
					errs.Add(p, "key %q: prefix %q must be a lower-case DNS subdomain", key, prefix)
					break
				}
			}
		}
	}
	if name == "" || len(name) > 63 || !labelNameRe.MatchString(name) {
		errs.Add(p, "key %q: name part must be 1–63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", key)
	}
	return errs
}

// Labels checks every key and value of a label map.
func Labels(p Path, labels map[string]string) Errors {
	var errs Errors
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		errs.Append(LabelKey(p.Key(k), k))
		if len(v) > 63 || !labelValueRe.MatchString(v) {
			errs.Add(p.Key(k), "value %q must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", v)
		}
	}
	return errs
}

// Port checks a TCP/UDP port number (1–65535).
func Port(p Path, port uint32) Errors {
	var errs Errors
	if port == 0 || port > 65535 {
		errs.Add(p, "must be a port number between 1 and 65535")
	}
	return errs
}

// OneOf checks that value is one of allowed.
func OneOf(p Path, value string, allowed ...string) Errors {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	var errs Errors
	errs.Add(p, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
	return errs
}
