package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Index is the body of GET /: which product and version serve the API.
type Index struct {
	// Product is "Atoll" for an Atoll control plane ("Kuma" for Kuma).
	Product string `json:"product"`
	// Version of the control plane.
	Version string `json:"version"`
	// BasedOnKuma is the Kuma API level the control plane follows.
	BasedOnKuma string `json:"basedOnKuma,omitempty"`
	// InstanceID identifies the control-plane instance.
	InstanceID string `json:"instanceId,omitempty"`
	// ClusterID identifies the control-plane cluster.
	ClusterID string `json:"clusterId,omitempty"`
	// Hostname of the control plane's machine.
	Hostname string `json:"hostname,omitempty"`
	// Mode is standalone, zone or global.
	Mode string `json:"mode,omitempty"`
	// Environment is universal or kubernetes.
	Environment string `json:"environment,omitempty"`
	// GUI is the path of the web UI.
	GUI string `json:"gui,omitempty"`
	// Raw is the whole body as received.
	Raw json.RawMessage `json:"-"`
}

// Index returns GET /.
func (c *Client) Index(ctx context.Context) (Index, error) {
	res, err := c.do(ctx, request{method: http.MethodGet, path: ""})
	if err != nil {
		return Index{}, fmt.Errorf("reading the control plane index: %w", err)
	}
	var idx Index
	if err := json.Unmarshal(res.body, &idx); err != nil {
		return Index{}, fmt.Errorf("reading the control plane index at %s: the answer is not JSON (%s): %w", c.base, quoteBody(res.body), err)
	}
	idx.Raw = json.RawMessage(bytes.TrimSpace(res.body))
	return idx, nil
}

// TypeInfo is one entry of GET /_resources.
type TypeInfo struct {
	// Name is the type name, for example "MeshTimeout".
	Name string `json:"name"`
	// Path is the plural REST path segment.
	Path string `json:"path"`
	// Scope is "Mesh" or "Global".
	Scope string `json:"scope"`
	// ShortName is the CLI alias.
	ShortName string `json:"shortName,omitempty"`
	// SingularDisplayName is the human singular.
	SingularDisplayName string `json:"singularDisplayName,omitempty"`
	// PluralDisplayName is the human plural.
	PluralDisplayName string `json:"pluralDisplayName,omitempty"`
	// ReadOnly types cannot be written through the API.
	ReadOnly bool `json:"readOnly"`
	// IncludeInFederation says whether multi-zone sync carries the type.
	IncludeInFederation bool `json:"includeInFederation"`
	// Policy is set for targetRef policies.
	Policy *PolicyInfo `json:"policy,omitempty"`
}

// PolicyInfo describes the sections of a policy type.
type PolicyInfo struct {
	// IsTargetRef is true for targetRef policies.
	IsTargetRef bool `json:"isTargetRef"`
	// HasToTargetRef: the policy has to[].
	HasToTargetRef bool `json:"hasToTargetRef"`
	// HasFromTargetRef: the policy has from[].
	HasFromTargetRef bool `json:"hasFromTargetRef"`
	// HasRulesTargetRef: the policy has rules[].
	HasRulesTargetRef bool `json:"hasRulesTargetRef"`
}

// Types returns the resource types the server serves (GET /_resources).
func (c *Client) Types(ctx context.Context) ([]TypeInfo, error) {
	res, err := c.do(ctx, request{method: http.MethodGet, path: "/_resources"})
	if err != nil {
		return nil, fmt.Errorf("listing resource types: %w", err)
	}
	var body struct {
		Resources []TypeInfo `json:"resources"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		return nil, fmt.Errorf("listing resource types: the answer is not a type list: %w", err)
	}
	return body.Resources, nil
}

// collectionPath returns where the resources of d in mesh are listed. For a
// mesh-scoped type, an empty mesh lists every mesh (/{path}).
func collectionPath(d *resource.Descriptor, mesh string) string {
	switch {
	case d.Name == resource.MeshType:
		return "/meshes"
	case d.Scope == resource.ScopeGlobal || mesh == "":
		return "/" + d.Path
	default:
		return "/meshes/" + url.PathEscape(mesh) + "/" + d.Path
	}
}

// itemPath returns where one resource of d is read and written.
func itemPath(d *resource.Descriptor, key resource.Key) (string, error) {
	if key.Name == "" {
		return "", fmt.Errorf("%s: a name is required", d.Name)
	}
	if d.Scope == resource.ScopeMesh && key.Mesh == "" {
		return "", fmt.Errorf("%s %q: a mesh is required: %s is mesh-scoped", d.Name, key.Name, d.Name)
	}
	if d.Scope == resource.ScopeGlobal && key.Mesh != "" {
		return "", fmt.Errorf("%s %q: %s is not mesh-scoped, but mesh %q was given", d.Name, key.Name, d.Name, key.Mesh)
	}
	return collectionPath(d, key.Mesh) + "/" + url.PathEscape(key.Name), nil
}

// Get returns one resource. Its Meta.Version is the server's ETag, usable as
// PutOptions.IfVersion. A missing resource gives an error IsNotFound accepts.
func (c *Client) Get(ctx context.Context, d *resource.Descriptor, key resource.Key) (*resource.Resource, error) {
	p, err := itemPath(d, key)
	if err != nil {
		return nil, err
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: p})
	if err != nil {
		return nil, fmt.Errorf("getting %s %q: %w", d.Name, key.String(), err)
	}
	out, err := decodeResource(d, res.body)
	if err != nil {
		return nil, fmt.Errorf("reading %s %q from the control plane: %w", d.Name, key.String(), err)
	}
	out.Meta.Version = etagVersion(res.header)
	return out, nil
}

// ListOptions select and page a List.
type ListOptions struct {
	// Size is the page size; 0 lets the server choose (100 on Atoll and Kuma).
	Size int
	// Offset skips this many resources.
	Offset int
	// Labels keeps resources carrying all these labels with equal values.
	Labels map[string]string
	// NameContains keeps resources whose name contains this text.
	NameContains string
}

// ListResult is one page of a List.
type ListResult struct {
	// Items on this page.
	Items []*resource.Resource
	// Total counts every match, across pages.
	Total int
	// NextOffset is the offset of the next page, or -1 on the last one.
	NextOffset int
	// Next is the server's URL of the next page, or empty on the last one.
	Next string
}

// List returns one page of the resources of d in mesh. For a mesh-scoped
// type, an empty mesh lists every mesh; for Mesh and global types mesh must
// be empty.
func (c *Client) List(ctx context.Context, d *resource.Descriptor, mesh string, opts ListOptions) (ListResult, error) {
	if d.Scope == resource.ScopeGlobal && mesh != "" {
		return ListResult{}, fmt.Errorf("listing %s: it is not mesh-scoped, but mesh %q was given", d.Path, mesh)
	}
	q := url.Values{}
	if opts.Size > 0 {
		q.Set("size", strconv.Itoa(opts.Size))
	}
	if opts.Offset > 0 {
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	for k, v := range opts.Labels {
		q.Set("filter[labels."+k+"]", v)
	}
	if opts.NameContains != "" {
		q.Set("filter[name]", opts.NameContains)
	}
	where := d.Path
	if mesh != "" {
		where = fmt.Sprintf("%s in mesh %q", d.Path, mesh)
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: collectionPath(d, mesh), query: q})
	if err != nil {
		return ListResult{}, fmt.Errorf("listing %s: %w", where, err)
	}
	var body struct {
		Total *int              `json:"total"`
		Items []json.RawMessage `json:"items"`
		Next  *string           `json:"next"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		return ListResult{}, fmt.Errorf("listing %s: the answer is not a list: %w", where, err)
	}
	out := ListResult{Items: make([]*resource.Resource, 0, len(body.Items)), NextOffset: -1}
	for i, raw := range body.Items {
		item, err := decodeResource(d, raw)
		if err != nil {
			return ListResult{}, fmt.Errorf("listing %s: reading item %d: %w", where, i, err)
		}
		out.Items = append(out.Items, item)
	}
	out.Total = len(out.Items)
	if body.Total != nil {
		out.Total = *body.Total
	}
	if body.Next != nil && *body.Next != "" {
		out.Next = *body.Next
		out.NextOffset = nextOffset(*body.Next, opts.Offset+len(out.Items))
	}
	return out, nil
}

// nextOffset reads the offset of a next-page URL, or returns fallback.
func nextOffset(next string, fallback int) int {
	u, err := url.Parse(next)
	if err != nil {
		return fallback
	}
	n, err := strconv.Atoi(u.Query().Get("offset"))
	if err != nil || n < 0 {
		return fallback
	}
	return n
}

// PutOptions refine Put.
type PutOptions struct {
	// DryRun asks the server to validate and check preconditions without
	// storing anything (?dryRun=true).
	DryRun bool
	// IfVersion makes the write conditional on the stored version (If-Match);
	// a stale version gets a 409 that IsConflict accepts.
	IfVersion string
}

// PutResult says what Put did.
type PutResult struct {
	// Resource is what the server stored (or, on a dry run, would store).
	Resource *resource.Resource
	// Created is true when the resource did not exist (HTTP 201).
	Created bool
	// Warnings are the server's non-fatal remarks, if any.
	Warnings []string
}

// Put creates or replaces res (create-or-update). The type comes from
// res.Type; mesh-scoped resources need res.Meta.Mesh.
func (c *Client) Put(ctx context.Context, res *resource.Resource, opts PutOptions) (PutResult, error) {
	d, ok := c.reg.Get(res.Type)
	if !ok {
		return PutResult{}, fmt.Errorf("putting %q: unknown resource type %q", res.Meta.Name, res.Type)
	}
	p, err := itemPath(d, res.Key())
	if err != nil {
		return PutResult{}, err
	}
	body, err := resource.EncodeJSON(d, res)
	if err != nil {
		return PutResult{}, fmt.Errorf("putting %s %q: %w", d.Name, res.Key().String(), err)
	}
	q := url.Values{}
	if opts.DryRun {
		q.Set("dryRun", "true")
	}
	h := http.Header{}
	if opts.IfVersion != "" {
		h.Set("If-Match", `"`+opts.IfVersion+`"`)
	}
	ans, err := c.do(ctx, request{method: http.MethodPut, path: p, query: q, body: body, header: h})
	if err != nil {
		return PutResult{}, fmt.Errorf("putting %s %q: %w", d.Name, res.Key().String(), err)
	}
	if ans.status != http.StatusOK && ans.status != http.StatusCreated {
		return PutResult{}, fmt.Errorf("putting %s %q: unexpected answer (%d): %s", d.Name, res.Key().String(), ans.status, quoteBody(ans.body))
	}
	out := PutResult{Created: ans.status == http.StatusCreated}
	stored, warnings, err := readPutBody(d, ans.body)
	if err != nil {
		return PutResult{}, fmt.Errorf("putting %s %q: reading the answer: %w", d.Name, res.Key().String(), err)
	}
	if stored == nil {
		// A server that answers {} (as Kuma does) stored what was sent.
		stored, err = resource.Clone(d, res)
		if err != nil {
			return PutResult{}, err
		}
	}
	stored.Meta.Version = etagVersion(ans.header)
	out.Resource, out.Warnings = stored, warnings
	return out, nil
}

// readPutBody reads a PUT answer: the stored resource (Atoll), or {} or
// {"warnings": [...]} (Kuma). It returns a nil resource when the body holds none.
func readPutBody(d *resource.Descriptor, body []byte) (*resource.Resource, []string, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, nil, fmt.Errorf("the body is not a JSON object: %w", err)
	}
	var warnings []string
	if w, ok := fields["warnings"]; ok {
		if err := json.Unmarshal(w, &warnings); err != nil {
			return nil, nil, fmt.Errorf("warnings: %w", err)
		}
		delete(fields, "warnings")
		rest, err := json.Marshal(fields)
		if err != nil {
			return nil, nil, err
		}
		body = rest
	}
	if _, ok := fields["type"]; !ok {
		return nil, warnings, nil
	}
	res, err := decodeResource(d, body)
	if err != nil {
		return nil, nil, err
	}
	return res, warnings, nil
}

// decodeResource reads a resource the server wrote, including the
// server-owned times that resource.DecodeJSONAs ignores (it reads user input).
func decodeResource(d *resource.Descriptor, body []byte) (*resource.Resource, error) {
	res, err := resource.DecodeJSONAs(d, body)
	if err != nil {
		return nil, err
	}
	var times struct {
		CreationTime     *time.Time `json:"creationTime"`
		ModificationTime *time.Time `json:"modificationTime"`
	}
	if err := json.Unmarshal(body, &times); err != nil {
		return nil, fmt.Errorf("reading creationTime/modificationTime: %w", err)
	}
	if times.CreationTime != nil {
		res.Meta.CreationTime = *times.CreationTime
	}
	if times.ModificationTime != nil {
		res.Meta.ModificationTime = *times.ModificationTime
	}
	return res, nil
}

// DeleteOptions refine Delete.
type DeleteOptions struct {
	// Force deletes a mesh even while its dataplanes are online (?force=true).
	Force bool
	// IfVersion makes the delete conditional on the stored version (If-Match).
	IfVersion string
}

// Delete removes one resource. A missing resource gives an error IsNotFound
// accepts.
func (c *Client) Delete(ctx context.Context, d *resource.Descriptor, key resource.Key, opts DeleteOptions) error {
	p, err := itemPath(d, key)
	if err != nil {
		return err
	}
	q := url.Values{}
	if opts.Force {
		q.Set("force", "true")
	}
	h := http.Header{}
	if opts.IfVersion != "" {
		h.Set("If-Match", `"`+opts.IfVersion+`"`)
	}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: p, query: q, header: h}); err != nil {
		return fmt.Errorf("deleting %s %q: %w", d.Name, key.String(), err)
	}
	return nil
}

// etagVersion reads the resource version from an ETag header.
func etagVersion(h http.Header) string {
	v := strings.TrimSpace(h.Get("ETag"))
	v = strings.TrimPrefix(v, "W/")
	return strings.Trim(v, `"`)
}
