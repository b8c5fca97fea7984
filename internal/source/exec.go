package source

import (
	"context"
	"log/slog"
)

// Exec runs a shell command that writes Annex-B H.264 to stdout, e.g.
// ffmpeg or gst-launch-1.0. The command line goes to /bin/sh -c, so pipes
// and quoting work as in a terminal.
type Exec struct {
	Command string
	Log     *slog.Logger

	seen stderrMemory
}

func (e *Exec) String() string { return "exec:" + e.Command }

// Run implements Source.
func (e *Exec) Run(ctx context.Context, sink Sink) error {
	p := &process{name: "/bin/sh", args: []string{"-c", e.Command}, log: e.Log, label: "command", seen: &e.seen}
	return p.run(ctx, sink)
}
