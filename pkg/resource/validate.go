package resource

import "github.com/atoll-mesh/atoll/api/validate"

// Validate checks a resource's metadata against its type (name, mesh, labels)
// and then its spec, returning every problem at once.
func Validate(d *Descriptor, res *Resource) validate.Errors {
	var errs validate.Errors
	errs.Append(validate.Name(keyName, res.Meta.Name))
	if d.Scope == ScopeMesh {
		if res.Meta.Mesh == "" {
			errs.Add(keyMesh, "must be set: %s is mesh-scoped", d.Name)
		} else {
			errs.Append(validate.Name(keyMesh, res.Meta.Mesh))
		}
	} else if res.Meta.Mesh != "" {
		errs.Add(keyMesh, "must not be set: %s is not mesh-scoped", d.Name)
	}
	errs.Append(validate.Labels(keyLabels, res.Meta.Labels))
	if res.Spec == nil {
		errs.Add(keySpec, "must be set")
		return errs
	}
	errs.Append(res.Spec.Validate())
	return errs
}
