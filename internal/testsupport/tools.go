package testsupport

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// RequireToolsEnv names the variable that turns a missing real client
// from a skip into a failure. .ci/run sets it: CI must run every check.
const RequireToolsEnv = "CAMFEED_REQUIRE_TOOLS"

// RequireTools reports whether missing tools fail tests ($CAMFEED_REQUIRE_TOOLS=1).
func RequireTools() bool {
	v := os.Getenv(RequireToolsEnv)
	return v != "" && v != "0"
}

// NeedTool returns the path of the named program. When it is missing the
// test skips, or fails when RequireTools is set.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name)
	}
	return p
}

// Missing skips the test for want of the named tool, or fails it when
// RequireTools is set. It does not return.
func Missing(t testing.TB, name string) {
	t.Helper()
	if RequireTools() {
		t.Fatalf("%s is not installed, and %s=1 requires it (bash .ci/run installs it)", name, RequireToolsEnv)
	}
	t.Skipf("%s is not installed (bash .ci/run installs it; %s=1 makes this a failure)", name, RequireToolsEnv)
}

// HasTool reports whether the named program is on PATH, for checks that
// add a real client's view when it is there. A test whose point is the
// tool uses NeedTool instead.
func HasTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// Run runs a tool with a timeout and returns its combined output. The
// timeout is functional: it ends a hung client, not a slow one.
func Run(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %v: %w", name, timeout, err)
	}
	return out.String(), err
}

// PerfEnv names the variable that runs the measurements: tests that
// report timing figures for docs/PERFORMANCE.md rather than check
// correctness. They skip otherwise, since their figures mean nothing on a
// machine shared with other work.
const PerfEnv = "CAMFEED_PERF"

// Measurement skips the test unless $CAMFEED_PERF is set.
func Measurement(t testing.TB) {
	t.Helper()
	if os.Getenv(PerfEnv) == "" {
		t.Skipf("a measurement, not a check: set %s=1 to run it (docs/PERFORMANCE.md)", PerfEnv)
	}
}

// HaveTool is for a check that adds a real client's view to a test that
// stands without it: it reports whether the named program is installed.
// When it is not, the test goes on (and says so in its log), or fails at
// the end when RequireTools is set.
func HaveTool(t testing.TB, name string) bool {
	t.Helper()
	if HasTool(name) {
		return true
	}
	if RequireTools() {
		t.Errorf("%s is not installed, and %s=1 requires it", name, RequireToolsEnv)
	} else {
		t.Logf("%s is not installed: its part of this test was left out", name)
	}
	return false
}
