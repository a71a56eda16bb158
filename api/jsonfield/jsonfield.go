// Package jsonfield lists the fields of a Go struct as encoding/json sees
// them (tag names, omitempty, fields of embedded structs promoted), so the
// strict decoder and the schema generator agree on what a type's JSON is.
package jsonfield

import (
	"reflect"
	"strings"
	"sync"
)

// Field is one JSON field of a struct.
type Field struct {
	// Name is the JSON name.
	Name string
	// Type is the Go type of the field.
	Type reflect.Type
	// OmitEmpty is set when the tag says omitempty or omitzero.
	OmitEmpty bool
	// GoName is the Go field name.
	GoName string
	// Owner is the struct declaring the field (an embedded struct for
	// promoted fields).
	Owner reflect.Type
}

// cache holds the fields of each struct type; types never change, so the
// cache is safe to share.
type cache struct{ m sync.Map }

var fields cache

// Of returns the JSON fields of struct type t in declaration order.
func Of(t reflect.Type) []Field {
	if f, ok := fields.m.Load(t); ok {
		return f.([]Field)
	}
	var out []Field
	collect(t, &out)
	fields.m.Store(t, out)
	return out
}

func collect(t reflect.Type, out *[]Field) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collect(ft, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		*out = append(*out, Field{
			Name: name, Type: f.Type, GoName: f.Name, Owner: t,
			OmitEmpty: strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero"),
		})
	}
}
