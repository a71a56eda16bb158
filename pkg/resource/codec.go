package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/atoll-mesh/atoll/api/decode"
	"github.com/atoll-mesh/atoll/api/validate"
)

// Envelope keys of the universal format. The server-owned ones are accepted
// on input (the real kumactl always sends them) and ignored.
const (
	keyType             = "type"
	keyName             = "name"
	keyMesh             = "mesh"
	keyLabels           = "labels"
	keyCreationTime     = "creationTime"
	keyModificationTime = "modificationTime"
	keyKRI              = "kri"
	keySpec             = "spec"
	keyStatus           = "status"
)

var ignoredKeys = map[string]bool{keyCreationTime: true, keyModificationTime: true, keyKRI: true}

// DecodeJSON reads one resource in Kuma's universal JSON format, taking its
// type from the document's "type" field. Every problem is returned at once as
// validate.Errors: unknown type, unknown fields, values of the wrong kind.
// Decoding does not run Spec.Validate.
func (r *Registry) DecodeJSON(data []byte) (*Resource, error) {
	tree, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	typ, ok := tree[keyType].(string)
	if !ok || typ == "" {
		return nil, validate.Errors{{Field: keyType, Message: "must be set to a resource type"}}
	}
	d, ok := r.Get(typ)
	if !ok {
		return nil, validate.Errors{{Field: keyType, Message: fmt.Sprintf("unknown resource type %q (known: %v)", typ, r.Names())}}
	}
	return decodeTree(d, tree)
}

// DecodeJSONAs reads one resource of the type d. A "type" field, when
// present, must name d.
func DecodeJSONAs(d *Descriptor, data []byte) (*Resource, error) {
	tree, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	return decodeTree(d, tree)
}

func parseObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, validate.Errors{{Message: "malformed JSON: " + err.Error()}}
	}
	if dec.More() {
		return nil, validate.Errors{{Message: "malformed JSON: unexpected data after the document"}}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, validate.Errors{{Message: "the document must be an object with type, name and spec"}}
	}
	return obj, nil
}

func decodeTree(d *Descriptor, tree map[string]any) (*Resource, error) {
	var errs validate.Errors
	res := &Resource{Type: d.Name, Spec: d.NewSpec()}

	if t, present := tree[keyType]; present {
		if s, _ := t.(string); s != d.Name {
			errs.Add(keyType, "type in body should be one of [%s], got %v", d.Name, t)
		}
	}
	if v, present := tree[keyName]; present {
		s, ok := v.(string)
		if !ok {
			errs.Add(keyName, "must be a string")
		}
		res.Meta.Name = s
	}
	if v, present := tree[keyMesh]; present {
		s, ok := v.(string)
		switch {
		case !ok:
			errs.Add(keyMesh, "must be a string")
		case d.Scope == ScopeGlobal && s != "":
			errs.Add(keyMesh, "must not be set: %s is not mesh-scoped", d.Name)
		}
		if d.Scope == ScopeMesh {
			res.Meta.Mesh = s
		}
	}
	if v, present := tree[keyLabels]; present && v != nil {
		var labels map[string]string
		if err := decode.StrictValue(v, &labels, keyLabels); err != nil {
			errs.Append(asErrors(err))
		}
		res.Meta.Labels = labels
	}

	rest := map[string]any{}
	for k, v := range tree {
		switch {
		case k == keyType || k == keyName || k == keyMesh || k == keyLabels || ignoredKeys[k]:
		case d.InlineSpec:
			rest[k] = v
		case k == keySpec:
			if err := decode.StrictValue(v, res.Spec, keySpec); err != nil {
				errs.Append(asErrors(err))
			}
		case k == keyStatus && d.NewStatus != nil:
			st := d.NewStatus()
			if err := decode.StrictValue(v, st, keyStatus); err != nil {
				errs.Append(asErrors(err))
			}
			res.Status = st
		default:
			errs.Add(validate.Path(k), "unknown field")
		}
	}
	if d.InlineSpec {
		if err := decode.StrictValue(rest, res.Spec, validate.Root); err != nil {
			errs.Append(asErrors(err))
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b validate.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return nil, errs
	}
	return res, nil
}

func asErrors(err error) validate.Errors {
	if e, ok := err.(validate.Errors); ok {
		return e
	}
	return validate.Errors{{Message: err.Error()}}
}

// EncodeJSON writes res in Kuma's universal JSON format: type, mesh, name,
// times and labels first, then the spec (inline or under "spec") and status.
func (r *Registry) EncodeJSON(res *Resource) ([]byte, error) {
	d, ok := r.Get(res.Type)
	if !ok {
		return nil, fmt.Errorf("encoding resource: unknown type %q", res.Type)
	}
	return EncodeJSON(d, res)
}

// EncodeJSON writes res, of type d, in Kuma's universal JSON format.
func EncodeJSON(d *Descriptor, res *Resource) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	field := func(k string, v any) error {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding %s %q field %s: %w", d.Name, res.Meta.Name, k, err)
		}
		b.Write(vb)
		return nil
	}
	if err := field(keyType, d.Name); err != nil {
		return nil, err
	}
	if d.Scope == ScopeMesh {
		_ = field(keyMesh, res.Meta.Mesh)
	}
	_ = field(keyName, res.Meta.Name)
	_ = field(keyCreationTime, res.Meta.CreationTime.UTC().Format(time.RFC3339Nano))
	_ = field(keyModificationTime, res.Meta.ModificationTime.UTC().Format(time.RFC3339Nano))
	if len(res.Meta.Labels) > 0 {
		_ = field(keyLabels, res.Meta.Labels)
	}
	if d.InlineSpec {
		sb, err := json.Marshal(res.Spec)
		if err != nil {
			return nil, fmt.Errorf("encoding %s %q: %w", d.Name, res.Meta.Name, err)
		}
		inner := bytes.TrimSpace(sb)
		if len(inner) > 2 && inner[0] == '{' {
			b.WriteByte(',')
			b.Write(inner[1 : len(inner)-1])
		}
	} else {
		spec := res.Spec
		if spec == nil {
			spec = d.NewSpec()
		}
		if err := field(keySpec, spec); err != nil {
			return nil, err
		}
	}
	if res.Status != nil {
		if err := field(keyStatus, res.Status); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Clone returns a deep copy of res that the caller may change.
func (r *Registry) Clone(res *Resource) (*Resource, error) {
	d, ok := r.Get(res.Type)
	if !ok {
		return nil, fmt.Errorf("cloning resource: unknown type %q", res.Type)
	}
	return Clone(d, res)
}

// SpecCopier is implemented by specs that copy themselves faster than
// Clone's JSON round trip, with the same result: specs the control plane
// rewrites at a high rate (DataplaneInsight).
type SpecCopier interface {
	// DeepCopySpec returns a copy of the same type sharing no memory.
	DeepCopySpec() any
}

// Clone returns a deep copy of res, of type d, that the caller may change.
func Clone(d *Descriptor, res *Resource) (*Resource, error) {
	out := &Resource{Type: res.Type, Meta: res.Meta}
	out.Meta.Labels = maps.Clone(res.Meta.Labels)
	if c, ok := res.Spec.(SpecCopier); ok && res.Status == nil {
		if spec, ok := c.DeepCopySpec().(Spec); ok {
			out.Spec = spec
			return out, nil
		}
	}
	spec := d.NewSpec()
	if res.Spec != nil {
		b, err := json.Marshal(res.Spec)
		if err != nil {
			return nil, fmt.Errorf("cloning %s %q: %w", d.Name, res.Meta.Name, err)
		}
		if err := json.Unmarshal(b, spec); err != nil {
			return nil, fmt.Errorf("cloning %s %q: %w", d.Name, res.Meta.Name, err)
		}
	}
	out.Spec = spec
	if res.Status != nil && d.NewStatus != nil {
		st := d.NewStatus()
		b, err := json.Marshal(res.Status)
		if err != nil {
			return nil, fmt.Errorf("cloning %s %q status: %w", d.Name, res.Meta.Name, err)
		}
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("cloning %s %q status: %w", d.Name, res.Meta.Name, err)
		}
		out.Status = st
	}
	return out, nil
}
