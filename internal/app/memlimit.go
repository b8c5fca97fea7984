package app

import (
	"os"
	"runtime/debug"

	"github.com/camfeed/camfeed/internal/config"
)

// Allowances of the memory limit beyond the pre-rolls (see memoryLimit).
const (
	memBase      = 24 << 20  // the runtime, outputs, HTTP, one feed's parser and ingest
	memPerViewer = 256 << 10 // a viewer's buffers and goroutines, with room to spare
)

// memoryLimit derives the Go runtime's soft memory limit from the config:
// twice what the feeds' pre-rolls may hold (a GOP larger than the budget
// may take the ring up to twice it, see hub.Config.MaxBytes), plus an
// allowance for the runtime and for each viewer the limits admit.
//
// Without a limit the heap may grow to twice what is live before a
// collection (GOGC=100); on a 512 MB Pi running other things that is
// RAM camfeed does not need. The limit is soft: near it the collector
// runs more often, capped by the runtime at half the CPU, and the process
// is never stopped for it. It is not set when GOMEMLIMIT is in the
// environment (the operator's choice wins), nor when max_viewers is 0,
// where nothing bounds what the viewers take.
func memoryLimit(cfg *config.Config) (int64, bool) {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok || cfg.Limits.MaxViewers <= 0 {
		return 0, false
	}
	var budget int64
	for _, name := range cfg.FeedNames() {
		budget += int64(cfg.Effective(name).BudgetBytes())
	}
	return 2*budget + memBase + int64(cfg.Limits.MaxViewers)*memPerViewer, true
}

// gcPercent is the collector's headroom (GOGC) unless the environment
// sets one. The pre-roll is most of a camfeed's heap and turns over
// completely every buffer period, so at Go's default of 100 the heap may
// hold a second pre-roll of garbage; at 50 it holds half of one. The
// collector's extra work is small: the pre-roll is byte slabs with few
// pointers to mark, and at 2 Mbit/s a cycle comes every half minute or so
// (docs/PERFORMANCE.md, "Memory").
const gcPercent = 50

// SetMemoryLimit applies memoryLimit and gcPercent to the process and
// says so in the log. The command calls it; tests, which run many apps in
// one process under the race detector, do not.
func (a *App) SetMemoryLimit() {
	if n, ok := memoryLimit(a.cfg); ok {
		debug.SetMemoryLimit(n)
		a.log.Info("Go memory limit set from the pre-roll budgets and max_viewers", "bytes", n)
	}
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
}
