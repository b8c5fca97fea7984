// Command camfeed keeps a camera's H.264 feed hot in RAM and serves it to
// any number of viewers with low latency. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/camfeed/camfeed/internal/app"
	"github.com/camfeed/camfeed/internal/config"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, env []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, "camfeed", version)
			return 0
		case "testsrc":
			return runTestsrc(args[1:], stdout, stderr)
		case "help":
			usage(stdout)
			return 0
		}
	}
	cfg, err := config.Load(args, env, stderr)
	if errors.Is(err, config.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "camfeed:", err)
		return 2
	}
	log := newLogger(cfg, stderr, env)
	a, err := app.New(cfg, version, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `camfeed keeps a camera's H.264 feed hot in RAM and serves it with low latency.

Usage:
  camfeed [flags]            serve (camfeed --help lists the flags)
  camfeed version            print the version
  camfeed testsrc [flags]    write the built-in test pattern as H.264 to stdout
`)
}

// newLogger makes the slog logger. Under systemd (JOURNAL_STREAM set) the
// text format leaves out the time: journald stamps every line already.
func newLogger(cfg *config.Config, w io.Writer, env []string) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	for _, kv := range env {
		if len(kv) > len("JOURNAL_STREAM=") && kv[:len("JOURNAL_STREAM=")] == "JOURNAL_STREAM=" {
			opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey && len(groups) == 0 {
					return slog.Attr{}
				}
				return a
			}
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
