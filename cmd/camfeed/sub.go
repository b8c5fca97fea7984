package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/camfeed/camfeed/internal/app"
	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/cameras"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/systemd"
)

// sampleConfig is written to /etc/camfeed/camfeed.yaml by service install
// when there is none yet.
var sampleConfig = config.Sample

// runCameras lists the cameras: camfeed cameras [--json].
func runCameras(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camfeed cameras", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parseFlags(fs, args, "camfeed cameras [--json]\n\nLists the cameras libcamera sees, with their modes.", stdout, stderr); done {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cams, err := cameras.List(ctx)
	if ferr := cameras.Format(stdout, cams, *asJSON); ferr != nil {
		fmt.Fprintln(stderr, "camfeed cameras:", ferr)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "camfeed cameras:", err)
		if len(cams) == 0 {
			return 1
		}
	}
	return 0
}

// parseFlags parses a subcommand's flags. --help is a request: the usage
// goes to stdout and the exit status is 0. A wrong flag is a mistake: the
// error and the usage go to stderr, status 2. done tells the caller to
// return code.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // Parse would print it to stderr, even for --help
	err := fs.Parse(args)
	if err == nil {
		return 0, false
	}
	w, code := stderr, 2
	if errors.Is(err, flag.ErrHelp) {
		w, code = stdout, 0
	}
	fmt.Fprintf(w, "usage: %s\n\nFlags:\n", usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	return code, true
}

// runPasswd prints a password hash (or a token) for the config's users.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camfeed passwd", flag.ContinueOnError)
	token := fs.Bool("token", false, "make a bearer token instead of a password hash")
	if code, done := parseFlags(fs, args, "camfeed passwd [--token]\n\nPrints a password hash for users[].password: the password is asked for on a\nterminal (twice, not shown) or read as one line from a pipe.", stdout, stderr); done {
		return code
	}
	if *token {
		tok, configured := auth.NewToken()
		fmt.Fprintf(stdout, "token (give this to the client):  %s\nconfig (put this under tokens:): %s\n", tok, configured)
		return 0
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "camfeed passwd:", err)
		return 1
	}
	if pw == "" {
		fmt.Fprintln(stderr, "camfeed passwd: empty password")
		return 2
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(stderr, "camfeed passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}

// errMismatch is a password typed twice differently on a terminal.
var errMismatch = errors.New("the passwords do not match")

// readPassword reads the password: on a terminal with echo off, asked
// twice (a typo would otherwise lock the user out), and otherwise one line
// of standard input, so that scripts can pipe it in.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask := func(prompt string) (string, error) {
			fmt.Fprint(stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr) // the Enter the terminal did not echo
			return string(b), err
		}
		pw, err := ask("password: ")
		if err != nil || pw == "" {
			return pw, err
		}
		again, err := ask("password again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errMismatch
		}
		return pw, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// runService installs, removes or shows the systemd service.
func runService(args, env []string, stdout, stderr io.Writer) int {
	const usage = "camfeed service install|uninstall|status [--dry-run] [--config FILE]\n\nInstalls camfeed as a systemd service (see docs/OPERATIONS.md), removes it, or shows its state."
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: "+usage)
		return 2
	}
	verb := args[0]
	switch verb {
	case "install", "uninstall", "status":
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, "usage: "+usage)
		return 0
	default:
		fmt.Fprintf(stderr, "camfeed service: unknown command %q; use install, uninstall or status\nusage: %s\n", verb, usage)
		return 2
	}
	fs := flag.NewFlagSet("camfeed service "+verb, flag.ContinueOnError)
	dry := fs.Bool("dry-run", false, "print the unit and the steps; change nothing")
	cfgPath := fs.String("config", systemd.DefaultConfig, "config file the service runs with")
	if code, done := parseFlags(fs, args[1:], usage, stdout, stderr); done {
		return code
	}
	opts := systemd.InstallOptions{Unit: systemd.DefaultUnitOptions(), DefaultConfig: sampleConfig}
	opts.Unit.Groups = nil // those of video and render that exist
	if bin, err := os.Executable(); err == nil {
		opts.Unit.Binary = bin
	}
	if abs, err := filepath.Abs(*cfgPath); err == nil {
		opts.Unit.Config = abs
	}
	// Size MemoryMax and the writable paths from the config, when it exists.
	if _, err := os.Stat(opts.Unit.Config); err == nil {
		cfg, err := config.Load([]string{"--config", opts.Unit.Config}, nil, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "camfeed service:", err)
			return 2
		}
		opts.Unit.FeedBudgets = nil
		for _, name := range cfg.FeedNames() {
			opts.Unit.FeedBudgets = append(opts.Unit.FeedBudgets, int64(cfg.Effective(name).BudgetBytes()))
		}
		for _, p := range []string{cfg.ClipsDir, cfg.RecordDir, cfg.UnixDir} {
			if p != "" {
				opts.Unit.WritePaths = append(opts.Unit.WritePaths, p)
			}
		}
		if cfg.FIFO != "" {
			opts.Unit.WritePaths = append(opts.Unit.WritePaths, filepath.Dir(cfg.FIFO))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch verb {
	case "install":
		err = systemd.Install(ctx, opts, *dry, stdout)
	case "uninstall":
		err = systemd.Uninstall(ctx, opts, *dry, stdout)
	case "status":
		_, err = systemd.Status(ctx, opts, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "camfeed", err) // "camfeed service install: ..."
		return 1
	}
	return 0
}

// checkConfig validates a config file: camfeed --check-config FILE.
func checkConfig(path string, env []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load([]string{"--config", path}, env, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "camfeed:", err)
		return 1
	}
	// Building the app (nothing starts) checks what only it knows, such as
	// feed names that a route already uses.
	if _, err := app.New(cfg, version, slog.New(slog.DiscardHandler)); err != nil {
		fmt.Fprintln(stderr, "camfeed:", err)
		return 1
	}
	noun := "feeds"
	if len(cfg.Feeds) == 1 {
		noun = "feed"
	}
	fmt.Fprintf(stdout, "%s: ok (%d %s: %s)\n", path, len(cfg.Feeds), noun, strings.Join(cfg.FeedNames(), ", "))
	return 0
}
