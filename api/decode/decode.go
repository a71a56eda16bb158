// Package decode reads JSON strictly: every unknown field and every value of
// the wrong kind is reported with its field path, instead of being silently
// dropped or failing at the first problem as encoding/json does.
package decode

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/atoll-mesh/atoll/api/jsonfield"
	"github.com/atoll-mesh/atoll/api/validate"
)

// Strict decodes the JSON document data into v (a non-nil pointer). The
// document is first checked against v's type: unknown fields, values of the
// wrong JSON kind and values rejected by a field's own UnmarshalJSON are all
// returned as validate.Errors below path. Only a clean document is decoded.
func Strict(data []byte, v any, path validate.Path) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return validate.Errors{{Field: string(path), Message: "malformed JSON: " + err.Error()}}
	}
	if dec.More() {
		return validate.Errors{{Field: string(path), Message: "malformed JSON: unexpected data after the document"}}
	}
	return StrictValue(tree, v, path)
}

// StrictValue is Strict for a document already parsed into generic values
// (map[string]any, []any, string, json.Number or float64, bool, nil).
func StrictValue(tree any, v any, path validate.Path) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode: target must be a non-nil pointer, got %T", v)
	}
	var errs validate.Errors
	check(tree, rv.Type().Elem(), path, &errs)
	if len(errs) > 0 {
		return errs
	}
	raw, err := json.Marshal(tree)
	if err != nil {
		return fmt.Errorf("decode: re-encoding checked document: %w", err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return validate.Errors{{Field: string(path), Message: err.Error()}}
	}
	return nil
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
)

func check(node any, t reflect.Type, path validate.Path, errs *validate.Errors) {
	if node == nil {
		// null is accepted everywhere, as encoding/json does: it leaves the
		// zero value. Required fields are enforced by validation.
		return
	}
	if t == rawMessageType || t.Kind() == reflect.Interface {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		raw, err := json.Marshal(node)
		if err != nil {
			errs.Add(path, "cannot be encoded: %v", err)
			return
		}
		target := reflect.New(t).Interface().(json.Unmarshaler)
		if err := target.UnmarshalJSON(raw); err != nil {
			var ferrs validate.Errors
			if asErrors(err, &ferrs) {
				errs.Append(ferrs.Prefix(path))
			} else {
				errs.Add(path, "%s", cleanMessage(err))
			}
		}
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		s, ok := node.(string)
		if !ok {
			errs.Add(path, "must be a string")
			return
		}
		target := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := target.UnmarshalText([]byte(s)); err != nil {
			errs.Add(path, "%s", cleanMessage(err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		check(node, t.Elem(), path, errs)
	case reflect.Struct:
		obj, ok := node.(map[string]any)
		if !ok {
			errs.Add(path, "must be an object")
			return
		}
		fields := fieldsOf(t)
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			f, ok := fields[key]
			if !ok {
				errs.Add(path.Field(key), "unknown field")
				continue
			}
			check(obj[key], f, path.Field(key), errs)
		}
	case reflect.Map:
		obj, ok := node.(map[string]any)
		if !ok {
			errs.Add(path, "must be an object")
			return
		}
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			check(obj[key], t.Elem(), path.Key(key), errs)
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := node.(string); !ok {
				errs.Add(path, "must be a base64-encoded string")
			}
			return
		}
		list, ok := node.([]any)
		if !ok {
			errs.Add(path, "must be a list")
			return
		}
		for i, item := range list {
			check(item, t.Elem(), path.Index(i), errs)
		}
	case reflect.String:
		if _, ok := node.(string); !ok {
			errs.Add(path, "must be a string")
		}
	case reflect.Bool:
		if _, ok := node.(bool); !ok {
			errs.Add(path, "must be a boolean (true or false)")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := integer(node)
		if !ok {
			errs.Add(path, "must be an integer")
			return
		}
		bits := t.Bits()
		min, max := int64(-1)<<(bits-1), int64(1)<<(bits-1)-1
		if i, err := strconv.ParseInt(n, 10, 64); err != nil || i < min || i > max {
			errs.Add(path, "must be an integer between %d and %d", min, max)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := integer(node)
		if !ok {
			errs.Add(path, "must be a non-negative integer")
			return
		}
		max := uint64(math.MaxUint64) >> (64 - t.Bits())
		if u, err := strconv.ParseUint(n, 10, 64); err != nil || u > max {
			errs.Add(path, "must be an integer between 0 and %d", max)
		}
	case reflect.Float32, reflect.Float64:
		switch node.(type) {
		case json.Number, float64:
		default:
			errs.Add(path, "must be a number")
		}
	default:
		errs.Add(path, "has a type the decoder does not support (%s)", t)
	}
}

// integer returns the decimal text of node when it is an integral JSON number.
func integer(node any) (string, bool) {
	switch n := node.(type) {
	case json.Number:
		s := n.String()
		if strings.ContainsAny(s, ".eE") {
			f, err := n.Float64()
			if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<63 {
				return "", false
			}
			return strconv.FormatFloat(f, 'f', 0, 64), true
		}
		return s, true
	case float64:
		if n != math.Trunc(n) {
			return "", false
		}
		return strconv.FormatFloat(n, 'f', 0, 64), true
	}
	return "", false
}

// fieldsOf maps the JSON names of t's fields to their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	fs := jsonfield.Of(t)
	out := make(map[string]reflect.Type, len(fs))
	for _, f := range fs {
		out[f.Name] = f.Type
	}
	return out
}

func asErrors(err error, target *validate.Errors) bool {
	e, ok := err.(validate.Errors)
	if ok {
		*target = e
	}
	return ok
}

// cleanMessage strips encoding/json's Go-centric prefixes from err.
func cleanMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return msg
}
