package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DataplaneOverview is a dataplane joined with what the control plane
// observed about it (GET …/dataplanes/_overview).
type DataplaneOverview struct {
	// Type is "DataplaneOverview".
	Type string `json:"type"`
	// Mesh of the dataplane.
	Mesh string `json:"mesh"`
	// Name of the dataplane.
	Name string `json:"name"`
	// ModificationTime of the dataplane.
	ModificationTime time.Time `json:"modificationTime"`
	// Labels of the dataplane.
	Labels map[string]string `json:"labels,omitempty"`
	// Dataplane is the Dataplane spec as JSON.
	Dataplane json.RawMessage `json:"dataplane"`
	// DataplaneInsight is the insight spec as JSON; empty before the first connection.
	DataplaneInsight json.RawMessage `json:"dataplaneInsight,omitempty"`
}

// OverviewPage is one page of dataplane overviews.
type OverviewPage struct {
	// Total counts every match.
	Total int `json:"total"`
	// Items on this page.
	Items []DataplaneOverview `json:"items"`
	// Next is the URL of the next page, or empty on the last one.
	Next string `json:"next"`
}

// DataplaneOverviews lists the dataplanes of mesh with their insights; tags
// keep dataplanes with an inbound carrying all of them.
func (c *Client) DataplaneOverviews(ctx context.Context, mesh string, tags map[string]string, opts ListOptions) (OverviewPage, error) {
	q := url.Values{}
	if opts.Size > 0 {
		q.Set("size", strconv.Itoa(opts.Size))
	}
	if opts.Offset > 0 {
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	for k, v := range tags {
		q.Add("tag", k+":"+v)
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: "/meshes/" + url.PathEscape(mesh) + "/dataplanes/_overview", query: q})
	if err != nil {
		return OverviewPage{}, err
	}
	var page struct {
		OverviewPage
		Next *string `json:"next"`
	}
	if err := json.Unmarshal(res.body, &page); err != nil {
		return OverviewPage{}, fmt.Errorf("reading dataplane overviews: %w", err)
	}
	if page.Next != nil {
		page.OverviewPage.Next = *page.Next
	}
	return page.OverviewPage, nil
}

// DataplaneOverview returns one dataplane with its insight.
func (c *Client) DataplaneOverview(ctx context.Context, mesh, name string) (DataplaneOverview, error) {
	res, err := c.do(ctx, request{method: http.MethodGet, path: "/meshes/" + url.PathEscape(mesh) + "/dataplanes/" + url.PathEscape(name) + "/_overview"})
	if err != nil {
		return DataplaneOverview{}, err
	}
	var ov DataplaneOverview
	if err := json.Unmarshal(res.body, &ov); err != nil {
		return DataplaneOverview{}, fmt.Errorf("reading the dataplane overview: %w", err)
	}
	return ov, nil
}

// DataplaneConfig returns the xDS configuration the control plane generates
// for a dataplane, as JSON or YAML; withIR adds the proxy IR.
func (c *Client) DataplaneConfig(ctx context.Context, mesh, name string, yaml, withIR bool) ([]byte, error) {
	q := url.Values{}
	if yaml {
		q.Set("format", "yaml")
	}
	if withIR {
		q.Set("include", "ir")
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: "/meshes/" + url.PathEscape(mesh) + "/dataplanes/" + url.PathEscape(name) + "/_config", query: q})
	if err != nil {
		return nil, err
	}
	return res.body, nil
}

// DataplaneRules returns which policies apply to a dataplane and why
// (GET .../_rules), as YAML or JSON.
func (c *Client) DataplaneRules(ctx context.Context, mesh, name string, yaml bool) ([]byte, error) {
	q := url.Values{}
	if yaml {
		q.Set("format", "yaml")
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: "/meshes/" + url.PathEscape(mesh) + "/dataplanes/" + url.PathEscape(name) + "/_rules", query: q})
	if err != nil {
		return nil, err
	}
	return res.body, nil
}

// TokenRequest asks for a dataplane token.
type TokenRequest struct {
	// Mesh the token is valid in.
	Mesh string `json:"mesh"`
	// Name binds the token to one dataplane; empty allows any of the mesh.
	Name string `json:"name,omitempty"`
	// Tags restrict the dataplane's tag values.
	Tags map[string][]string `json:"tags,omitempty"`
	// ValidFor is the lifetime ("24h", "30d"); empty means the server's default.
	ValidFor string `json:"validFor,omitempty"`
}

// IssueDataplaneToken asks the control plane for a dataplane token.
func (c *Client) IssueDataplaneToken(ctx context.Context, req TokenRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	res, err := c.do(ctx, request{method: http.MethodPost, path: "/tokens/dataplane", body: body})
	if err != nil {
		return "", err
	}
	return string(res.body), nil
}

// RevokeRequest names the token to revoke: the token itself, or its mesh
// and id (jti).
type RevokeRequest struct {
	// Token is the token text.
	Token string `json:"token,omitempty"`
	// Mesh of the token, with ID.
	Mesh string `json:"mesh,omitempty"`
	// ID is the token id (jti claim).
	ID string `json:"id,omitempty"`
}

// RevokeDataplaneToken revokes a dataplane token and returns its mesh and id.
func (c *Client) RevokeDataplaneToken(ctx context.Context, req RevokeRequest) (mesh, id string, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", "", err
	}
	res, err := c.do(ctx, request{method: http.MethodPost, path: "/tokens/dataplane/revoke", body: body})
	if err != nil {
		return "", "", err
	}
	var out struct{ Mesh, ID string }
	if err := json.Unmarshal(res.body, &out); err != nil {
		return "", "", fmt.Errorf("reading the revocation answer: %w", err)
	}
	return out.Mesh, out.ID, nil
}

// MeshInsight summarises one mesh (GET /mesh-insights).
type MeshInsight struct {
	// Name of the mesh.
	Name string `json:"name"`
	// ModificationTime of the mesh.
	ModificationTime time.Time `json:"modificationTime"`
	// Dataplanes counts the mesh's dataplanes.
	Dataplanes struct {
		Total   int `json:"total"`
		Online  int `json:"online"`
		Offline int `json:"offline"`
	} `json:"dataplanes"`
	// Policies counts policies per type.
	Policies map[string]struct {
		Total int `json:"total"`
	} `json:"policies"`
	// MTLS names the enabled backend.
	MTLS *struct {
		EnabledBackend string `json:"enabledBackend"`
	} `json:"mTLS,omitempty"`
}

// MeshInsights lists mesh summaries.
func (c *Client) MeshInsights(ctx context.Context) ([]MeshInsight, error) {
	res, err := c.do(ctx, request{method: http.MethodGet, path: "/mesh-insights", query: url.Values{"size": {"1000"}}})
	if err != nil {
		return nil, err
	}
	var page struct {
		Items []MeshInsight `json:"items"`
	}
	if err := json.Unmarshal(res.body, &page); err != nil {
		return nil, fmt.Errorf("reading mesh insights: %w", err)
	}
	return page.Items, nil
}
