// Package duration holds the duration type used in resource specs. A duration
// is kept as the text the user wrote ("20s", "1h", "10y") so that a resource
// reads back exactly as it was applied; it is parsed where it is used.
package duration

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a length of time written as Go duration text ("300ms", "1h30m")
// with two extra units for long lifetimes: "d" (24h) and "y" (365d).
// The empty Duration means "not set".
type Duration string

// Of returns the Duration for d in Go's notation.
func Of(d time.Duration) Duration { return Duration(d.String()) }

// IsSet reports whether the duration was given.
func (d Duration) IsSet() bool { return d != "" }

// Parse returns the length of time d stands for; the empty Duration is 0.
func (d Duration) Parse() (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	return Parse(string(d))
}

// Std returns the length of time d stands for, or 0 when it cannot be parsed
// (validation rejects such values before they are stored).
func (d Duration) Std() time.Duration {
	v, _ := d.Parse()
	return v
}

// UnmarshalJSON accepts a JSON string holding a valid duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`must be a duration string such as "10s" or "1h30m"`)
	}
	if _, err := Parse(s); err != nil {
		return err
	}
	*d = Duration(s)
	return nil
}

// Parse reads a duration in Go's notation extended with "d" and "y".
func Parse(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New(`must be a duration such as "10s" or "1h30m", got an empty string`)
	}
	if !strings.ContainsAny(s, "dy") {
		v, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf(`must be a duration such as "10s" or "1h30m", got %q`, s)
		}
		return v, nil
	}
	// Split off leading day/year components, then hand the rest to Go.
	rest, total, neg := s, time.Duration(0), false
	if strings.HasPrefix(rest, "-") {
		neg, rest = true, rest[1:]
	}
	for {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || (rest[i] != 'd' && rest[i] != 'y') {
			break
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > 10000 {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		unit := 24 * time.Hour
		if rest[i] == 'y' {
			unit *= 365
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if rest != "" {
		v, err := time.ParseDuration(rest)
		if err != nil || strings.ContainsAny(rest, "dy") {
			return 0, fmt.Errorf(`must be a duration such as "10s", "1h30m" or "90d", got %q`, s)
		}
		total += v
	}
	if neg {
		total = -total
	}
	return total, nil
}

// JSONSchema describes a duration for the OpenAPI document.
func (Duration) JSONSchema() map[string]any {
	return map[string]any{"type": "string", "format": "duration",
		"description": `Go duration text ("300ms", "10s", "1h30m"), plus "d" and "y" units`}
}
