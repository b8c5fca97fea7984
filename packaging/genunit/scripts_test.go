package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakePath makes every command the maintainer scripts call a fake that
// logs its arguments. getent knows the groups in groups and, if user,
// the camfeed user.
func fakePath(t *testing.T, user bool, groups ...string) (log string, env []string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls")
	known := "video"
	if len(groups) > 0 {
		known = strings.Join(groups, "|")
	}
	getent := fmt.Sprintf("#!/bin/sh\necho \"getent $*\" >> %q\ncase \"$1\" in\n  group) case \"$2\" in %s) exit 0 ;; esac; exit 2 ;;\n  passwd) exit %d ;;\nesac\n", log, known, map[bool]int{true: 0, false: 2}[user])
	for _, name := range []string{"useradd", "usermod", "chgrp", "chmod", "deb-systemd-helper", "deb-systemd-invoke", "systemctl"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %q\n", name, log)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// No statoverride for the config.
	os.WriteFile(filepath.Join(dir, "dpkg-statoverride"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "getent"), []byte(getent), 0o755)
	return log, append(os.Environ(), "PATH="+dir)
}

func runScript(t *testing.T, env []string, script string, args ...string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{filepath.Join("..", "deb", script)}, args...)...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
}

func calls(t *testing.T, log string) string {
	b, _ := os.ReadFile(log)
	return string(b)
}

func systemdRunning() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

func TestPostinstFirstInstall(t *testing.T) {
	log, env := fakePath(t, false, "video", "render")
	runScript(t, env, "postinst", "configure")
	got := calls(t, log)
	for _, want := range []string{
		"useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment camfeed camera server camfeed\n",
		"usermod --append --groups video camfeed\n",
		"usermod --append --groups render camfeed\n",
		"chgrp camfeed /etc/camfeed/camfeed.yaml\n",
		"chmod 0640 /etc/camfeed/camfeed.yaml\n",
		"deb-systemd-helper enable camfeed.service\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("postinst did not run %q; it ran:\n%s", want, got)
		}
	}
	if systemdRunning() && !strings.Contains(got, "deb-systemd-invoke start camfeed.service") {
		t.Errorf("not started:\n%s", got)
	}
}

func TestPostinstUpgrade(t *testing.T) {
	log, env := fakePath(t, true) // user exists; no render group
	runScript(t, env, "postinst", "configure", "0.1.0")
	got := calls(t, log)
	if strings.Contains(got, "useradd") || strings.Contains(got, "--groups render") {
		t.Errorf("upgrade:\n%s", got)
	}
	if systemdRunning() && !strings.Contains(got, "deb-systemd-invoke restart camfeed.service") {
		t.Errorf("not restarted:\n%s", got)
	}
}

func TestPrermPostrm(t *testing.T) {
	log, env := fakePath(t, true)
	runScript(t, env, "prerm", "upgrade", "0.2.0")
	if got := calls(t, log); strings.Contains(got, "stop") {
		t.Errorf("an upgrade stopped the service in prerm:\n%s", got)
	}
	runScript(t, env, "prerm", "remove")
	runScript(t, env, "postrm", "remove")
	if got := calls(t, log); systemdRunning() && !strings.Contains(got, "deb-systemd-invoke stop camfeed.service") {
		t.Errorf("remove did not stop:\n%s", got)
	}
}
