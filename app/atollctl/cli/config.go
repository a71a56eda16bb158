package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/atoll-mesh/atoll/pkg/client"
)

// localControlPlane is the control plane used when the config names none.
func localControlPlane() ControlPlane {
	return ControlPlane{Name: "local", Address: client.DefaultAddress}
}

// Config is atollctl's config file: the known control planes and which one
// commands talk to. It is stored as YAML with mode 0600 because it may hold
// tokens.
type Config struct {
	// CurrentControlPlane names the control plane commands use.
	CurrentControlPlane string `yaml:"currentControlPlane,omitempty"`
	// ControlPlanes are the known control planes, in the order they were added.
	ControlPlanes []ControlPlane `yaml:"controlPlanes"`
}

// ControlPlane is how to reach one control plane's REST API.
type ControlPlane struct {
	// Name identifies the control plane in the config.
	Name string `yaml:"name"`
	// Address is the REST API's base URL, for example http://localhost:5681.
	Address string `yaml:"address"`
	// AuthToken is sent as a bearer token, when set.
	AuthToken string `yaml:"authToken,omitempty"`
	// CACertFile is a PEM file of CAs trusted for an https address.
	CACertFile string `yaml:"caCertFile,omitempty"`
	// SkipVerify accepts any server certificate (development only).
	SkipVerify bool `yaml:"skipVerify,omitempty"`
	// Headers are sent with every request.
	Headers map[string]string `yaml:"headers,omitempty"`
}

// LoadConfig reads the config file at path. A missing file is an empty
// config, not an error.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	return cfg, nil
}

// Save writes the config to path with mode 0600, creating its directory
// (mode 0700). The file is replaced atomically.
func (c *Config) Save(path string) error {
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*")
	if err != nil {
		return fmt.Errorf("saving config: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("saving config: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("saving config %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving config %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving config: %w", err)
	}
	return nil
}

// Find returns the control plane called name.
func (c *Config) Find(name string) (ControlPlane, bool) {
	i := c.index(name)
	if i < 0 {
		return ControlPlane{}, false
	}
	return c.ControlPlanes[i], true
}

func (c *Config) index(name string) int {
	return slices.IndexFunc(c.ControlPlanes, func(cp ControlPlane) bool { return cp.Name == name })
}

// Current returns the control plane commands use: the current one, or the
// local default (http://localhost:5681) when none is set.
func (c *Config) Current() ControlPlane {
	if cp, ok := c.Find(c.CurrentControlPlane); ok {
		return cp
	}
	return localControlPlane()
}

// Put adds cp, or replaces the control plane of the same name.
func (c *Config) Put(cp ControlPlane) {
	if i := c.index(cp.Name); i >= 0 {
		c.ControlPlanes[i] = cp
		return
	}
	c.ControlPlanes = append(c.ControlPlanes, cp)
}

// Remove deletes the control plane called name and reports whether it
// existed. Removing the current one makes the first remaining one current.
func (c *Config) Remove(name string) bool {
	i := c.index(name)
	if i < 0 {
		return false
	}
	c.ControlPlanes = slices.Delete(c.ControlPlanes, i, i+1)
	if c.CurrentControlPlane == name {
		c.CurrentControlPlane = ""
		if len(c.ControlPlanes) > 0 {
			c.CurrentControlPlane = c.ControlPlanes[0].Name
		}
	}
	return true
}
