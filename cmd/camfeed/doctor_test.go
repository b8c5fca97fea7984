package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/camfeed/camfeed/internal/doctor"
)

// TestDoctor runs camfeed doctor on this machine with camfeed's own flags:
// --json gives every check, the exit code is 1 exactly when one is a
// fault, and a port already taken is one.
func TestDoctor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		http      string
		wantFault bool
	}{
		{"127.0.0.1:0", false},
		{ln.Addr().String(), true},
	} {
		code, out, errs := runCmd("doctor", "--json", "--http", tc.http, "--rtsp", "off", "--webrtc", "off")
		var got struct {
			Checks []doctor.Result
			Faults int
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("exit %d, %v: %s %s", code, err, out, errs)
		}
		if len(got.Checks) != 10 || (code == 1) != (got.Faults > 0) || (code != 0 && code != 1) {
			t.Errorf("--http %s: exit %d with %d faults: %s", tc.http, code, got.Faults, out)
		}
		for _, r := range got.Checks {
			if r.Check == "ports" && (r.Level == doctor.Fault) != tc.wantFault {
				t.Errorf("--http %s: %+v", tc.http, r)
			}
		}
	}
	code, out, _ := runCmd("doctor", "--http", "127.0.0.1:0", "--rtsp", "off", "--webrtc", "off")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 11 || !strings.HasPrefix(lines[10], "10 checks: ") || code > 1 {
		t.Errorf("text: exit %d:\n%s", code, out)
	}
	if code, _, errs := runCmd("doctor", "--no-such-flag"); code != 2 || !strings.Contains(errs, "no-such-flag") {
		t.Errorf("bad flag: exit %d: %s", code, errs)
	}
}
