package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Duration is a length of time written as a Go duration string ("5s",
// "1m30s") in YAML, JSON and environment variables.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns d in Go's notation, for example "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d in Go's notation.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf(`must be a duration such as "5s" or "1m30s", got %q`, text)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes d as a JSON string in Go's notation.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a JSON string holding a Go duration. Bare numbers are
// rejected: "5" could mean seconds or nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`must be a duration string such as "5s" or "1m30s"`)
	}
	return d.UnmarshalText([]byte(s))
}
