package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTools puts fake systemctl, useradd and usermod first on PATH. Each
// appends its name and arguments to the returned log; `systemctl show`
// prints the file named by $FAKE_SHOW.
func fakeTools(t *testing.T) (log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	for _, name := range []string{"systemctl", "useradd", "usermod"} {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %q\nif [ \"$1\" = show ] && [ -n \"$FAKE_SHOW\" ]; then cat \"$FAKE_SHOW\"; fi\n", name, log)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

func calls(t *testing.T, log string) string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// fakeRoot makes a root file system with /etc/passwd and /etc/group. The
// camfeed group uses this process's gid so that chown works unprivileged.
func fakeRoot(t *testing.T, passwd, groups string) string {
	t.Helper()
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "etc/passwd"), passwd)
	mustWrite(t, filepath.Join(root, "etc/group"), groups)
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil { // systemd is running
		t.Fatal(err)
	}
	return root
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInstallNewUser(t *testing.T) {
	log := fakeTools(t)
	gid := os.Getgid()
	root := fakeRoot(t, "root:x:0:0::/root:/bin/sh\n",
		fmt.Sprintf("video:x:44:pi\nrender:x:105:\ncamfeed:x:%d:\n", gid))
	opts := InstallOptions{Unit: DefaultUnitOptions(), Root: root, DefaultConfig: []byte("log_level: info\n")}
	opts.Unit.Groups = nil // video and render, those that exist
	var out bytes.Buffer
	if err := Install(context.Background(), opts, false, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --groups video,render camfeed\n" +
		"systemctl daemon-reload\n" +
		"systemctl enable camfeed.service\n" +
		"systemctl restart camfeed.service\n"
	if got := calls(t, log); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/camfeed.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "SupplementaryGroups=video render\n") {
		t.Errorf("unit does not use the groups found:\n%s", unit)
	}
	cfg := filepath.Join(root, DefaultConfig)
	st, err := os.Stat(cfg)
	if err != nil {
		t.Fatalf("default config not written: %v", err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("config mode %v, want 0640", st.Mode().Perm())
	}
	if !strings.Contains(out.String(), "journalctl -u camfeed -f") {
		t.Errorf("output does not say where the log is:\n%s", out.String())
	}
}

func TestInstallExistingUserMissingGroup(t *testing.T) {
	log := fakeTools(t)
	root := fakeRoot(t, "camfeed:x:998:998::/nonexistent:/usr/sbin/nologin\n",
		fmt.Sprintf("video:x:44:pi,camfeed\nrender:x:105:pi\ncamfeed:x:%d:\n", os.Getgid()))
	mustWrite(t, filepath.Join(root, DefaultConfig), "feeds: {}\n")
	opts := InstallOptions{Unit: UnitOptions{Config: DefaultConfig, Groups: []string{"video", "render", "gpio"}}, Root: root}
	var out bytes.Buffer
	if err := Install(context.Background(), opts, false, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := calls(t, log)
	if !strings.HasPrefix(got, "usermod --append --groups render camfeed\n") || strings.Contains(got, "useradd") {
		t.Errorf("commands:\n%s", got)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/camfeed.service"))
	if !strings.Contains(string(unit), "SupplementaryGroups=video render\n") {
		t.Errorf("a missing group (gpio) must be left out of the unit:\n%s", unit)
	}
	b, _ := os.ReadFile(filepath.Join(root, DefaultConfig))
	if string(b) != "feeds: {}\n" {
		t.Errorf("an existing config was changed: %q", b)
	}
}

func TestInstallMissingConfig(t *testing.T) {
	log := fakeTools(t)
	root := fakeRoot(t, "", "video:x:44:\n")
	opts := InstallOptions{Unit: UnitOptions{Config: "/etc/camfeed/nope.yaml"}, Root: root}
	err := Install(context.Background(), opts, false, &bytes.Buffer{})
	if !errors.Is(err, ErrConfigMissing) || !strings.Contains(err.Error(), "/etc/camfeed/nope.yaml") {
		t.Errorf("got %v, want a missing-config error naming the file", err)
	}
	// Even with a default config to write, one named by --config that does
	// not exist is an error: the sample is written only to the default path.
	opts.DefaultConfig = []byte("feeds: {}\n")
	if err := Install(context.Background(), opts, true, &bytes.Buffer{}); !errors.Is(err, ErrConfigMissing) {
		t.Errorf("dry run with a default config: got %v, want ErrConfigMissing", err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/camfeed/nope.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the sample config was written under the name given")
	}
	if got := calls(t, log); got != "" {
		t.Errorf("commands ran before the check: %s", got)
	}
}

func TestInstallDryRun(t *testing.T) {
	log := fakeTools(t)
	root := fakeRoot(t, "", "video:x:44:\n")
	// A binary and a config under /tmp, as a download or a build leaves
	// them: PrivateTmp=yes hides /tmp from the service, so both are copied.
	dir := tmpDir(t)
	bin, cfg := filepath.Join(dir, "camfeed"), filepath.Join(dir, "camfeed.yaml")
	mustWrite(t, bin, "#!/bin/sh\n")
	mustWrite(t, cfg, "feeds: {}\n")
	opts := InstallOptions{Unit: UnitOptions{Binary: bin, Config: cfg}, Root: root}
	var out bytes.Buffer
	if err := Install(context.Background(), opts, true, &out); err != nil {
		t.Fatal(err)
	}
	if got := calls(t, log); got != "" {
		t.Errorf("a dry run ran commands:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/camfeed.service")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a dry run wrote the unit")
	}
	s := out.String()
	for _, want := range []string{
		"#   copy " + bin + " to /usr/local/bin/camfeed (the service has its own private /tmp; run install again to update it)",
		"#   copy " + cfg + " to /etc/camfeed/camfeed.yaml (the service has its own private /tmp; from now on edit /etc/camfeed/camfeed.yaml)",
		"#   useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --groups video camfeed",
		"#   systemctl enable camfeed.service",
		"ExecStart=/usr/local/bin/camfeed --config /etc/camfeed/camfeed.yaml\n",
		"ProtectHome=yes\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, s)
		}
	}
}

// tmpDir is a directory under /tmp whatever $TMPDIR says: the install
// rules are about /tmp itself.
func tmpDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "camfeed-install-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestInstallWhereFilesStay: a binary in a system directory and a config
// outside the places the sandbox hides are used where they are; a binary
// anywhere else (a build directory) is copied; a missing binary is an
// error before anything is planned.
func TestInstallWhereFilesStay(t *testing.T) {
	fakeTools(t)
	root := fakeRoot(t, "", "video:x:44:\n")
	cfg := "/srv/camfeed/cam.yaml"
	mustWrite(t, filepath.Join(root, cfg), "feeds: {}\n")
	for _, tc := range []struct {
		binary string
		copied bool
	}{
		{"/usr/bin/camfeed", false},
		{"/usr/local/bin/camfeed", false},
		{"/opt/camfeed/bin/camfeed", false},
		{"", true}, // this test binary, in Go's build cache
	} {
		bin := tc.binary
		if bin == "" {
			var err error
			if bin, err = os.Executable(); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		opts := InstallOptions{Unit: UnitOptions{Binary: bin, Config: cfg}, Root: root}
		if err := Install(context.Background(), opts, true, &out); err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		s := out.String()
		if got := strings.Contains(s, "#   copy "+bin+" to /usr/local/bin/camfeed"); got != tc.copied {
			t.Errorf("%s: copied %v, want %v:\n%s", bin, got, tc.copied, s)
		}
		wantExec := "ExecStart=" + bin + " --config " + cfg + "\n"
		if tc.copied {
			wantExec = "ExecStart=/usr/local/bin/camfeed --config " + cfg + "\n"
		}
		if !strings.Contains(s, wantExec) || strings.Contains(s, "copy "+cfg) {
			t.Errorf("%s: want %q and the config used in place:\n%s", bin, wantExec, s)
		}
	}
	opts := InstallOptions{Unit: UnitOptions{Binary: "/home/nobody-camfeed/go/bin/camfeed", Config: cfg}, Root: root}
	if err := Install(context.Background(), opts, true, &bytes.Buffer{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing binary: got %v, want not found", err)
	}
}

func TestInstallRefusesToOverwriteConfig(t *testing.T) {
	fakeTools(t)
	home := t.TempDir()
	root := fakeRoot(t, "", "video:x:44:\n")
	mustWrite(t, filepath.Join(root, DefaultConfig), "mine: 1\n")
	// The source must look like a home path to be copied; the test cannot
	// write to /home, so it checks copyFile directly.
	src := filepath.Join(home, "camfeed.yaml")
	mustWrite(t, src, "theirs: 2\n")
	err := copyFile(src, filepath.Join(root, DefaultConfig), 0o640, false)
	if !errors.Is(err, ErrConfigExists) {
		t.Errorf("got %v, want ErrConfigExists", err)
	}
	mustWrite(t, src, "mine: 1\n")
	if err := copyFile(src, filepath.Join(root, DefaultConfig), 0o640, false); err != nil {
		t.Errorf("identical config: %v", err)
	}
}

func TestUninstall(t *testing.T) {
	log := fakeTools(t)
	root := fakeRoot(t, "", "")
	unit := filepath.Join(root, "etc/systemd/system/camfeed.service")
	mustWrite(t, unit, Unit(DefaultUnitOptions()))
	var out bytes.Buffer
	if err := Uninstall(context.Background(), InstallOptions{Root: root}, false, &out); err != nil {
		t.Fatal(err)
	}
	if got, want := calls(t, log), "systemctl disable --now camfeed.service\nsystemctl daemon-reload\n"; got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(unit); !errors.Is(err, os.ErrNotExist) {
		t.Error("unit not removed")
	}
	if err := Uninstall(context.Background(), InstallOptions{Root: root}, false, &out); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second uninstall: %v, want ErrNotInstalled", err)
	}
	mustWrite(t, filepath.Join(root, "usr/lib/systemd/system/camfeed.service"), "")
	if err := Uninstall(context.Background(), InstallOptions{Root: root}, false, &out); !errors.Is(err, ErrPackaged) {
		t.Errorf("packaged unit: %v, want ErrPackaged", err)
	}
}

func TestStatus(t *testing.T) {
	fakeTools(t)
	show := filepath.Join(t.TempDir(), "show")
	t.Setenv("FAKE_SHOW", show)

	mustWrite(t, show, "LoadState=loaded\nUnitFileState=enabled\nActiveState=active\nSubState=running\nMainPID=812\nNRestarts=2\n"+
		"StatusText=cam: 30.0 fps, 1 viewer\nActiveEnterTimestamp=Sat 2025-05-03 10:00:00 BST\nFragmentPath=/etc/systemd/system/camfeed.service\n")
	root := fakeRoot(t, "", "")
	var out bytes.Buffer
	st, err := Status(context.Background(), InstallOptions{Root: root}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running() || st.MainPID != 812 || st.Restarts != 2 || st.Text != "cam: 30.0 fps, 1 viewer" {
		t.Errorf("%+v", st)
	}
	want := "camfeed.service: active (running), enabled\n" +
		"  since Sat 2025-05-03 10:00:00 BST, main PID 812, restarted 2 times\n" +
		"  status: cam: 30.0 fps, 1 viewer\n" +
		"  unit: /etc/systemd/system/camfeed.service\n  log: journalctl -u camfeed -e\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}

	mustWrite(t, show, "LoadState=not-found\nActiveState=inactive\n")
	if _, err := Status(context.Background(), InstallOptions{Root: root}, &out); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("not found: %v", err)
	}
}

// TestNoSystemd: on a machine without systemd (a container, another init
// system) the service commands say so, instead of "systemctl show: exit
// status 1", and run nothing.
func TestNoSystemd(t *testing.T) {
	log := fakeTools(t)
	root := t.TempDir()
	opts := InstallOptions{Unit: DefaultUnitOptions(), Root: root, DefaultConfig: []byte("feeds: {}\n")}
	if _, err := Status(context.Background(), opts, &bytes.Buffer{}); !errors.Is(err, ErrNoSystemd) {
		t.Errorf("status: %v", err)
	}
	if err := Install(context.Background(), opts, false, &bytes.Buffer{}); !errors.Is(err, ErrNoSystemd) {
		t.Errorf("install: %v", err)
	}
	if err := Uninstall(context.Background(), opts, false, &bytes.Buffer{}); !errors.Is(err, ErrNoSystemd) {
		t.Errorf("uninstall: %v", err)
	}
	if err := Install(context.Background(), opts, true, &bytes.Buffer{}); err != nil {
		t.Errorf("a dry run needs no systemd: %v", err)
	}
	if got := calls(t, log); got != "" {
		t.Errorf("commands ran: %s", got)
	}
}

func TestInstallNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root")
	}
	if err := Install(context.Background(), InstallOptions{}, false, &bytes.Buffer{}); !errors.Is(err, ErrNotRoot) {
		t.Errorf("got %v, want ErrNotRoot", err)
	}
}
