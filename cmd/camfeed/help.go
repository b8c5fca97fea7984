package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/camfeed/camfeed/internal/config"
)

// subcommand is one of camfeed's commands besides serving. run dispatches
// from this table and the help lists it, so neither can miss one.
type subcommand struct {
	name  string
	args  string // what follows the name, for the help
	usage string
	run   func(args, env []string, stdout, stderr io.Writer) int
}

func subcommands() []subcommand {
	return []subcommand{
		{"cameras", "[--json]", "list cameras and their sensor modes",
			func(args, _ []string, stdout, stderr io.Writer) int { return runCameras(args, stdout, stderr) }},
		{"doctor", "[--json] [--config FILE]", "check this machine for the usual Raspberry Pi faults, each with its fix",
			runDoctor},
		{"passwd", "[--token]", "hash a password (or make a token) for the config's users",
			func(args, _ []string, stdout, stderr io.Writer) int { return runPasswd(args, os.Stdin, stdout, stderr) }},
		{"service", "install|uninstall|status [--dry-run] [--config FILE]", "run camfeed at boot under systemd",
			runService},
		{"testsrc", "[--width N] [--height N] [--fps N] [--intra N] [--frames N] [--fast]", "write the built-in test pattern as H.264 to stdout",
			func(args, _ []string, stdout, stderr io.Writer) int { return runTestsrc(args, stdout, stderr) }},
		{"version", "", "print the version (also --version)",
			func(_, _ []string, stdout, _ io.Writer) int { fmt.Fprintln(stdout, "camfeed", version); return 0 }},
		{"help", "", "print this help (also --help)",
			func(_, _ []string, stdout, _ io.Writer) int { usage(stdout); return 0 }},
	}
}

// findSubcommand returns the subcommand named name.
func findSubcommand(name string) (subcommand, bool) {
	for _, s := range subcommands() {
		if s.name == name {
			return s, true
		}
	}
	return subcommand{}, false
}

// usage writes camfeed --help: what it is, the commands, and every flag
// with its value, default and environment variable.
func usage(w io.Writer) {
	fmt.Fprint(w, `camfeed keeps a camera's H.264 feed hot in RAM and serves it with low latency.

Usage:
  camfeed [flags]                  serve (with no flags: the camera, or the
                                   test pattern without one, on :8000)
  camfeed --check-config FILE      validate a config file and exit
  camfeed COMMAND [flags]

Commands:
`)
	for _, s := range subcommands() {
		head := "  " + s.name
		if s.args != "" {
			head += " " + s.args
		}
		if len(head) < 35 {
			fmt.Fprintf(w, "%-35s%s\n", head, s.usage)
		} else {
			fmt.Fprintf(w, "%s\n%35s%s\n", head, "", s.usage)
		}
	}
	fmt.Fprint(w, `
Flags. Each is also a config key and a CAMFEED_ environment variable:
--lag-budget is lag_budget: and CAMFEED_LAG_BUDGET. Flags win over the
environment, which wins over the file (--config). A feed's keys (source,
width, ...) set the default feed, cam.

`)
	config.WriteFlags(w)
	fmt.Fprint(w, `
Every key with its default: camfeed.yaml. More: README.md and docs/.
`)
}

// unknownCommand is the error for a word that is no command.
func unknownCommand(word string, stderr io.Writer) int {
	var names []string
	for _, s := range subcommands() {
		names = append(names, s.name)
	}
	msg := fmt.Sprintf("camfeed: unknown command %q", word)
	if s := config.Suggest(word, names); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	fmt.Fprintf(stderr, "%s (camfeed --help lists the commands: %s)\n", msg, strings.Join(names, ", "))
	return 2
}
