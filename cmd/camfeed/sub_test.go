package main

import (
	"strings"
	"testing"
)

// TestSubcommandHelp: --help is a request, not a mistake: usage on
// stdout, exit 0 (testsrc --help exited 2). A wrong flag is a mistake:
// exit 2, on stderr.
func TestSubcommandHelp(t *testing.T) {
	for _, tc := range []struct {
		cmd  []string
		flag string
	}{
		{[]string{"testsrc"}, "-fps"},
		{[]string{"passwd"}, "-token"},
		{[]string{"cameras"}, "-json"},
		{[]string{"service", "install"}, "-dry-run"},
		{[]string{"service"}, "--dry-run"},
	} {
		name := strings.Join(tc.cmd, " ")
		for _, arg := range []string{"--help", "-h"} {
			code, out, errs := runCmd(append(tc.cmd, arg)...)
			if code != 0 || !strings.Contains(out, "usage: camfeed "+tc.cmd[0]) || !strings.Contains(out, tc.flag) || errs != "" {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", name, arg, code, out, errs)
			}
		}
		if code, out, errs := runCmd(append(tc.cmd, "--nope")...); code != 2 || out != "" || !strings.Contains(errs, "-nope") || !strings.Contains(errs, "usage:") {
			t.Errorf("%s --nope: exit %d, stdout %q, stderr %q", name, code, out, errs)
		}
	}
}
