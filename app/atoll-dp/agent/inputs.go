package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// tokenSource yields the dataplane token. A token file is read again on
// every call so that a rotated token is used without a restart.
type tokenSource struct {
	file  string
	token string
}

// get returns the token, or an error naming the file and what is wrong.
func (s tokenSource) get() (string, error) {
	if s.file == "" {
		return strings.TrimSpace(s.token), nil
	}
	b, err := os.ReadFile(s.file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("dataplane token file %s does not exist (--dataplane-token-file)", s.file)
		}
		return "", fmt.Errorf("cannot read dataplane token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("dataplane token file %s is empty", s.file)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("dataplane token file %s must hold one token, found several words", s.file)
	}
	return tok, nil
}

// dataplaneRef names the dataplane the agent bootstraps and, when it came
// from --dataplane-file, carries it as universal JSON for the control plane
// to register.
type dataplaneRef struct {
	mesh string
	name string
	json string
}

// loadDataplane reads and validates --dataplane-file, reconciling its name
// and mesh with --name and --mesh, or, without a file, names a dataplane
// created beforehand.
func loadDataplane(reg *resource.Registry, file, name, mesh string) (dataplaneRef, error) {
	if file == "" {
		var errs validate.Errors
		errs.Append(validate.Name("--name", name))
		errs.Append(validate.Name("--mesh", mesh))
		if len(errs) > 0 {
			return dataplaneRef{}, fmt.Errorf("invalid dataplane name: %w", errs)
		}
		return dataplaneRef{mesh: mesh, name: name}, nil
	}
	desc, ok := reg.Get(resource.DataplaneType)
	if !ok {
		return dataplaneRef{}, errors.New("the resource registry has no Dataplane type")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return dataplaneRef{}, fmt.Errorf("cannot read dataplane file: %w", err)
	}
	docs := resource.SplitYAML(data)
	switch {
	case len(docs) == 0:
		return dataplaneRef{}, fmt.Errorf("dataplane file %s is empty: it must hold one Dataplane", file)
	case len(docs) > 1:
		return dataplaneRef{}, fmt.Errorf("dataplane file %s holds %d documents (the second starts on line %d): it must hold one Dataplane", file, len(docs), docs[1].Line)
	}
	j, err := resource.YAMLToJSON(docs[0].Data)
	if err != nil {
		return dataplaneRef{}, fmt.Errorf("dataplane file %s is invalid: %w", file, err)
	}
	res, err := resource.DecodeJSONAs(desc, j)
	if err != nil {
		return dataplaneRef{}, fmt.Errorf("dataplane file %s is invalid: %w", file, err)
	}
	if err := reconcile(file, "--name", "name", name, &res.Meta.Name); err != nil {
		return dataplaneRef{}, err
	}
	if err := reconcile(file, "--mesh", "mesh", mesh, &res.Meta.Mesh); err != nil {
		return dataplaneRef{}, err
	}
	if errs := resource.Validate(desc, res); len(errs) > 0 {
		return dataplaneRef{}, fmt.Errorf("dataplane file %s is invalid: %w", file, errs)
	}
	out, err := resource.EncodeJSON(desc, res)
	if err != nil {
		return dataplaneRef{}, err
	}
	return dataplaneRef{mesh: res.Meta.Mesh, name: res.Meta.Name, json: string(out)}, nil
}

// reconcile fills an empty name or mesh of the dataplane file from its flag
// and refuses a flag that contradicts the file.
func reconcile(file, flag, key, given string, field *string) error {
	switch {
	case given == "" || *field == given:
		return nil
	case *field == "":
		*field = given
		return nil
	default:
		return fmt.Errorf("%s %q does not match %s %q in dataplane file %s", flag, given, key, *field, file)
	}
}
