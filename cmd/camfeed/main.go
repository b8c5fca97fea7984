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
	"strings"
	"syscall"

	"github.com/camfeed/camfeed/internal/app"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/systemd"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, env []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if sub, ok := findSubcommand(args[0]); ok {
			return sub.run(args[1:], env, stdout, stderr)
		}
		switch args[0] {
		case "--version", "-version":
			fmt.Fprintln(stdout, "camfeed", version)
			return 0
		case "--check-config", "-check-config":
			if len(args) != 2 {
				fmt.Fprintln(stderr, "usage: camfeed --check-config FILE")
				return 2
			}
			return checkConfig(args[1], env, stdout, stderr)
		}
		if !strings.HasPrefix(args[0], "-") {
			return unknownCommand(args[0], stderr)
		}
	}
	cfg, err := config.Load(args, env, stderr)
	if errors.Is(err, config.ErrHelp) {
		usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "camfeed:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	a, err := app.New(cfg, version, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	a.Notifier = systemd.NotifierFromEnv()
	a.SetMemoryLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(a, args, env, log, stderr)
			}
		}
	}()
	if err := a.Run(ctx); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	return 0
}

// reload re-reads the configuration on SIGHUP. An invalid one is logged
// and the running one stays.
func reload(a *app.App, args, env []string, log *slog.Logger, stderr io.Writer) {
	_ = a.Notifier.Reloading()
	defer a.Notifier.Ready()
	cfg, err := config.Load(args, env, stderr)
	if err != nil {
		log.Error("reload refused: the new config is invalid; the old one keeps running", "err", err)
		return
	}
	if err := a.Reload(cfg); err != nil {
		log.Error("reload failed; the old config keeps running", "err", err)
	}
}

// newLogger makes the slog logger. When stderr is the journal, the text
// format leaves out the time: journald stamps every line already.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	if systemd.StderrIsJournal() {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
