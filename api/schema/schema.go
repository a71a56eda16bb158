// Package schema derives JSON Schema (the OpenAPI 3 dialect) from the Go API
// types by reflection, so the published API description can never drift from
// the types the server decodes.
package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/atoll-mesh/atoll/api/jsonfield"
)

// Schema is a JSON Schema object.
type Schema = map[string]any

// Provider is implemented by types whose JSON form differs from their Go
// shape (custom marshalling); it returns their schema.
type Provider interface {
	// JSONSchema returns the schema of the type's JSON form.
	JSONSchema() Schema
}

var (
	providerType = reflect.TypeFor[Provider]()
	rawType      = reflect.TypeFor[json.RawMessage]()
	timeType     = reflect.TypeFor[time.Time]()
)

// For returns the schema of values of type t as encoding/json writes them.
// Objects reject unknown properties, as the server does.
func For(t reflect.Type) Schema {
	if t.Kind() == reflect.Pointer {
		return For(t.Elem())
	}
	if t.Implements(providerType) {
		return reflect.Zero(t).Interface().(Provider).JSONSchema()
	}
	if reflect.PointerTo(t).Implements(providerType) {
		return reflect.New(t).Interface().(Provider).JSONSchema()
	}
	switch t {
	case rawType:
		return Schema{"description": "any JSON value"}
	case timeType:
		return Schema{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return For(t.Elem())
	case reflect.Interface:
		return Schema{}
	case reflect.Struct:
		return object(t)
	case reflect.Map:
		return Schema{"type": "object", "additionalProperties": For(t.Elem())}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return Schema{"type": "string", "format": "byte"}
		}
		return Schema{"type": "array", "items": For(t.Elem())}
	case reflect.String:
		return Schema{"type": "string"}
	case reflect.Bool:
		return Schema{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return Schema{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return Schema{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return Schema{"type": "number"}
	}
	return Schema{}
}

func object(t reflect.Type) Schema {
	props := Schema{}
	var required []string
	for _, f := range jsonfield.Of(t) {
		fs := For(f.Type)
		if desc := fieldDescription(f.Owner.PkgPath() + "." + baseName(f.Owner) + "." + f.GoName); desc != "" {
			fs = withDescription(fs, desc)
		}
		props[f.Name] = fs
		if !f.OmitEmpty && f.Type.Kind() != reflect.Pointer {
			required = append(required, f.Name)
		}
	}
	s := Schema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// withDescription returns a copy of s with a description, so shared schemas
// of providers are never changed in place.
func withDescription(s Schema, desc string) Schema {
	out := make(Schema, len(s)+1)
	for k, v := range s {
		out[k] = v
	}
	out["description"] = desc
	return out
}

// baseName is t's name without type arguments ("To" for To[Conf]).
func baseName(t reflect.Type) string {
	name := t.Name()
	if i := strings.IndexByte(name, '['); i >= 0 {
		return name[:i]
	}
	return name
}
