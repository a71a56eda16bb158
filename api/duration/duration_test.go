package duration_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/duration"
)

func TestParse(t *testing.T) {
	for text, want := range map[string]time.Duration{
		"10s":     10 * time.Second,
		"1h30m":   90 * time.Minute,
		"300ms":   300 * time.Millisecond,
		"0s":      0,
		"1d":      24 * time.Hour,
		"10y":     10 * 365 * 24 * time.Hour,
		"1d12h":   36 * time.Hour,
		"2y3d1ms": (2*365+3)*24*time.Hour + time.Millisecond,
		"-1d":     -24 * time.Hour,
	} {
		got, err := duration.Parse(text)
		require.NoError(t, err, text)
		require.Equal(t, want, got, text)
	}
	for _, bad := range []string{"", "3 parsecs", "d", "1", "1dd", "1h1d", "10000000y"} {
		_, err := duration.Parse(bad)
		require.Error(t, err, bad)
	}
}

func TestJSONKeepsTheTextAsWritten(t *testing.T) {
	var v struct {
		D duration.Duration `json:"d"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"d":"1h"}`), &v))
	out, err := json.Marshal(v)
	require.NoError(t, err)
	require.JSONEq(t, `{"d":"1h"}`, string(out), "not 1h0m0s")
	require.Equal(t, time.Hour, v.D.Std())
	require.Error(t, json.Unmarshal([]byte(`{"d":5}`), &v))
	require.Error(t, json.Unmarshal([]byte(`{"d":"soon"}`), &v))
}
