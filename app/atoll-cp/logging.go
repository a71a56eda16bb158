package main

import (
	"io"
	"log/slog"

	"github.com/atoll-mesh/atoll/pkg/config"
)

// newLogger returns the process's root logger, writing to w in the level and
// format of cfg (which has been validated). Components receive it with a
// "component" attribute naming them: logger.With("component", "api-server").
func newLogger(cfg config.Logging, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slogLevel(cfg.Level)}
	if cfg.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func slogLevel(l config.LogLevel) slog.Level {
	switch l {
	case config.LogDebug:
		return slog.LevelDebug
	case config.LogWarn:
		return slog.LevelWarn
	case config.LogError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
