package main

import (
	"strings"
	"testing"
)

// TestTestsrcHelp: --help is a request, not a mistake: usage on stdout,
// exit 0. A wrong flag is a mistake: exit 2, on stderr.
func TestTestsrcHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		code, out, errs := runCmd("testsrc", arg)
		if code != 0 || !strings.Contains(out, "usage: camfeed testsrc") || !strings.Contains(out, "-fps") || errs != "" {
			t.Errorf("testsrc %s: exit %d, stdout %q, stderr %q", arg, code, out, errs)
		}
	}
	if code, out, errs := runCmd("testsrc", "--nope"); code != 2 || out != "" || !strings.Contains(errs, "-nope") {
		t.Errorf("testsrc --nope: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
