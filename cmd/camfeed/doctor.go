package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/doctor"
)

const doctorUsage = `usage: camfeed doctor [--json] [--config FILE] [any camfeed flag]

Checks this machine for the usual Raspberry Pi faults, one line each (ok,
warning or fault, with the fix); exits 1 when any check is a fault.

  --json          print the checks as JSON, for scripts
  --config FILE   check against this config (camfeed's other flags work too)
`

// runDoctor checks this machine for the usual Raspberry Pi faults:
// camfeed doctor [--json] [camfeed's own flags, such as --config FILE].
// It exits 1 when any check is a fault, 2 on bad arguments.
func runDoctor(args, env []string, stdout, stderr io.Writer) int {
	asJSON := false
	var rest []string
	for _, a := range args {
		switch a {
		case "--help", "-help", "-h":
			fmt.Fprint(stdout, doctorUsage)
			return 0
		case "--json", "-json":
			asJSON = true
		default:
			rest = append(rest, a)
		}
	}
	cfg, err := config.Load(rest, env, stderr)
	if errors.Is(err, config.ErrHelp) {
		fmt.Fprint(stdout, doctorUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "camfeed doctor:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results := doctor.Run(ctx, doctor.Defaults(cfg))
	if err := doctor.Print(stdout, results, asJSON); err != nil {
		fmt.Fprintln(stderr, "camfeed doctor:", err)
		return 1
	}
	if doctor.Faulty(results) {
		return 1
	}
	return 0
}
