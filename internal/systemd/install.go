package systemd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Errors callers branch on. Their text is what a person should do.
var (
	ErrNotRoot      = errors.New("must run as root: sudo camfeed service install")
	ErrNotInstalled = errors.New("camfeed service is not installed: sudo camfeed service install")
	ErrPackaged     = errors.New("the camfeed service was installed by the camfeed package: sudo apt remove camfeed")
	ErrConfigExists = errors.New("a different config is already installed; edit it, or remove it first")
	ErrNoSystemd    = errors.New("systemd is not running on this machine (no /run/systemd/system), so there is no service to manage: run camfeed directly, or under the init system in use")
)

// systemdRunning reports whether systemd is the running init system, as
// sd_booted(3) decides it.
func (o InstallOptions) systemdRunning() bool {
	st, err := os.Stat(o.path("/run/systemd/system"))
	return err == nil && st.IsDir()
}

// InstallOptions configures Install, Uninstall and Status.
type InstallOptions struct {
	Unit UnitOptions

	// Root is prepended to every file path; "" and "/" mean the real
	// system. Tests set a temporary directory, which also skips the
	// root check. Commands (systemctl, useradd, usermod) run from PATH.
	Root string

	// DefaultConfig is written to Unit.Config when that file does not
	// exist yet, so that the service starts with a config it can read
	// (cmd/camfeed passes the sample config).
	DefaultConfig []byte
}

// Where a binary outside the system directories, and a config the sandbox
// would hide, are copied (see inSystemDir and hiddenFromService).
const (
	systemBinary = "/usr/local/bin/camfeed"
	systemConfig = DefaultConfig
	unitDir      = "/etc/systemd/system"
)

var packagedUnitDirs = []string{"/usr/lib/systemd/system", "/lib/systemd/system"}

func (o InstallOptions) real() bool { return o.Root == "" || o.Root == "/" }

func (o InstallOptions) path(p string) string {
	if o.real() {
		return p
	}
	return filepath.Join(o.Root, p)
}

// step is one action of an install or uninstall: described for --dry-run,
// done otherwise.
type step struct {
	desc string
	do   func(ctx context.Context) error
}

// Install creates the service user, writes the unit, reloads systemd and
// enables and (re)starts the service. With dryRun it only prints the steps
// and the unit, and needs no privileges. Running it again updates the unit
// and restarts the service; it is idempotent.
func Install(ctx context.Context, opts InstallOptions, dryRun bool, out io.Writer) error {
	if !dryRun && opts.real() && os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if !dryRun && !opts.systemdRunning() {
		return fmt.Errorf("service install: %w", ErrNoSystemd)
	}
	u := opts.Unit.withDefaults()
	var steps []step

	// The binary and the config are checked before any step is planned:
	// a wrong --config is an error, not a sample config written under
	// that name or a copy that fails halfway through the install.
	if !inSystemDir(u.Binary) {
		src := u.Binary
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("service install: binary: %w", err)
		}
		u.Binary = systemBinary
		steps = append(steps, step{
			fmt.Sprintf("copy %s to %s (%s; run install again to update it)", src, systemBinary, whyCopy(src)),
			func(context.Context) error { return copyFile(src, opts.path(systemBinary), 0o755, true) },
		})
	}
	if u.Config != "" {
		if hiddenFromService(u.Config) {
			src := u.Config
			if _, err := os.Stat(src); err != nil {
				return fmt.Errorf("service install: %w", configMissing(src, err))
			}
			u.Config = systemConfig
			steps = append(steps, step{
				fmt.Sprintf("copy %s to %s (%s; from now on edit %s)", src, systemConfig, whyCopy(src), systemConfig),
				func(context.Context) error { return copyFile(src, opts.path(systemConfig), 0o640, false) },
			})
		} else if _, err := os.Stat(opts.path(u.Config)); err != nil {
			if !errors.Is(err, os.ErrNotExist) || u.Config != systemConfig || opts.DefaultConfig == nil {
				return fmt.Errorf("service install: %w", configMissing(u.Config, err))
			}
			steps = append(steps, step{
				"write the default config to " + u.Config,
				func(context.Context) error {
					return writeFile(opts.path(u.Config), opts.DefaultConfig, 0o640)
				},
			})
		}
	}

	groups, err := readGroups(opts.path("/etc/group"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("service install: %w", err)
	}
	// Name only groups that exist: systemd refuses to start a unit with
	// a missing one (status=216/GROUP). Without a choice, video and render.
	want := opts.Unit.Groups
	if want == nil {
		want = []string{"video", "render"}
	}
	u.Groups = nil
	for _, g := range want {
		if _, ok := groups[g]; ok || groups == nil {
			u.Groups = append(u.Groups, g)
		}
	}
	exists, err := userExists(opts.path("/etc/passwd"), u.User)
	if err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	if !exists {
		args := []string{"--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"}
		if len(u.Groups) > 0 {
			args = append(args, "--groups", strings.Join(u.Groups, ","))
		}
		args = append(args, u.User)
		steps = append(steps, cmdStep("useradd", args...))
	} else {
		var missing []string
		for _, g := range u.Groups {
			if !slices.Contains(groups[g].members, u.User) {
				missing = append(missing, g)
			}
		}
		if len(missing) > 0 {
			steps = append(steps, cmdStep("usermod", "--append", "--groups", strings.Join(missing, ","), u.User))
		}
	}
	if u.Config != "" {
		cfg := u.Config
		steps = append(steps, step{
			fmt.Sprintf("let only root and group %s read %s (it may hold password hashes)", u.User, cfg),
			func(context.Context) error { return protectConfig(opts, cfg, u.User) },
		})
	}

	unitPath := filepath.Join(unitDir, u.UnitFile())
	text := Unit(u)
	steps = append(steps,
		step{"write " + unitPath, func(context.Context) error {
			return writeFile(opts.path(unitPath), []byte(text), 0o644)
		}},
		cmdStep("systemctl", "daemon-reload"),
		cmdStep("systemctl", "enable", u.UnitFile()),
		cmdStep("systemctl", "restart", u.UnitFile()),
	)

	if dryRun {
		fmt.Fprintln(out, "# camfeed service install would:")
		for _, s := range steps {
			fmt.Fprintln(out, "#   "+s.desc)
		}
		fmt.Fprintf(out, "# %s:\n%s", unitPath, text)
		return nil
	}
	if err := run(ctx, steps, out); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	fmt.Fprintf(out, "%s is enabled and running. Its log: journalctl -u %s -f\n", u.UnitFile(), u.Name)
	if u.Config != "" {
		fmt.Fprintf(out, "It reads %s: after editing it, sudo systemctl reload %s.\n", u.Config, u.Name)
	}
	return nil
}

// ErrConfigMissing is a --config file that does not exist.
var ErrConfigMissing = errors.New("config file not found")

func configMissing(path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s (check the path, or leave out --config to install the default config at %s)", ErrConfigMissing, path, systemConfig)
	}
	return fmt.Errorf("config: %w", err)
}

// systemBinDirs hold programs that a service runs where they are: the
// package manager's and the administrator's own. ProtectSystem=strict makes
// them read-only, which is all a program needs.
var systemBinDirs = []string{"/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/", "/bin/", "/sbin/", "/opt/"}

// inSystemDir reports whether p is in one of systemBinDirs. A binary
// anywhere else (a home directory, /tmp, a build or download directory) is
// copied to /usr/local/bin: the service must not depend on a file the
// sandbox hides (ProtectHome, PrivateTmp) or that a rebuild or a clean-up
// changes or removes under it.
func inSystemDir(p string) bool {
	for _, d := range systemBinDirs {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	return false
}

// hiddenFromService reports whether the unit's sandbox hides p from the
// service: home directories (ProtectHome) and the temporary directories,
// which PrivateTmp replaces with the service's own. A config anywhere else
// is read where it is, so that the user keeps editing the file they know.
func hiddenFromService(p string) bool {
	if underHome(p) {
		return true
	}
	for _, d := range []string{"/tmp/", "/var/tmp/"} {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	return false
}

// whyCopy says why a file is copied out of p's directory.
func whyCopy(p string) string {
	switch {
	case underHome(p):
		return "the service cannot enter home directories"
	case hiddenFromService(p):
		return "the service has its own private /tmp"
	}
	return "the service runs programs from system directories only, not from build or download directories"
}

// Uninstall stops and disables the service and removes the unit that
// Install wrote. It keeps the user and the config, and says how to remove
// them. A unit installed by the .deb is left to apt.
func Uninstall(ctx context.Context, opts InstallOptions, dryRun bool, out io.Writer) error {
	if !dryRun && opts.real() && os.Geteuid() != 0 {
		return fmt.Errorf("service uninstall: %w", errors.New("must run as root: sudo camfeed service uninstall"))
	}
	if !dryRun && !opts.systemdRunning() {
		return fmt.Errorf("service uninstall: %w", ErrNoSystemd)
	}
	u := opts.Unit.withDefaults()
	unitPath := filepath.Join(unitDir, u.UnitFile())
	if _, err := os.Stat(opts.path(unitPath)); errors.Is(err, os.ErrNotExist) {
		for _, d := range packagedUnitDirs {
			if _, err := os.Stat(opts.path(filepath.Join(d, u.UnitFile()))); err == nil {
				return fmt.Errorf("service uninstall: %w", ErrPackaged)
			}
		}
		return fmt.Errorf("service uninstall: %w", ErrNotInstalled)
	}
	steps := []step{
		cmdStep("systemctl", "disable", "--now", u.UnitFile()),
		{"remove " + unitPath, func(context.Context) error { return os.Remove(opts.path(unitPath)) }},
		cmdStep("systemctl", "daemon-reload"),
	}
	if dryRun {
		fmt.Fprintln(out, "# camfeed service uninstall would:")
		for _, s := range steps {
			fmt.Fprintln(out, "#   "+s.desc)
		}
		return nil
	}
	if err := run(ctx, steps, out); err != nil {
		return fmt.Errorf("service uninstall: %w", err)
	}
	fmt.Fprintf(out, "%s is stopped and removed. Kept: user %s and %s (sudo userdel %s; sudo rm -r %s).\n",
		u.UnitFile(), u.User, filepath.Dir(systemConfig), u.User, filepath.Dir(systemConfig))
	return nil
}

// ServiceStatus is what systemd says about the service.
type ServiceStatus struct {
	Loaded   bool   // a unit file exists
	Enabled  string // enabled, disabled, ...
	Active   string // active, activating, inactive, failed, ...
	Sub      string // running, auto-restart, dead, ...
	MainPID  int
	Restarts int    // NRestarts: automatic restarts since the unit was started
	Text     string // the last STATUS= camfeed sent
	Since    string
	Path     string // the unit file in use
}

// Running reports whether the service is up.
func (s ServiceStatus) Running() bool { return s.Active == "active" }

// Status asks systemd about the service and prints a short summary. It
// needs no privileges. It returns ErrNotInstalled when there is no unit.
func Status(ctx context.Context, opts InstallOptions, out io.Writer) (ServiceStatus, error) {
	u := opts.Unit.withDefaults()
	if !opts.systemdRunning() {
		return ServiceStatus{}, fmt.Errorf("service status: %w", ErrNoSystemd)
	}
	b, err := exec.CommandContext(ctx, "systemctl", "show", u.UnitFile(), "--no-pager",
		"--property=LoadState,UnitFileState,ActiveState,SubState,MainPID,NRestarts,StatusText,ActiveEnterTimestamp,FragmentPath").Output()
	if err != nil {
		return ServiceStatus{}, fmt.Errorf("service status: systemctl show: %w", err)
	}
	p := parseShow(b)
	st := ServiceStatus{
		Loaded: p["LoadState"] == "loaded", Enabled: p["UnitFileState"],
		Active: p["ActiveState"], Sub: p["SubState"], Text: p["StatusText"],
		Since: p["ActiveEnterTimestamp"], Path: p["FragmentPath"],
	}
	st.MainPID, _ = strconv.Atoi(p["MainPID"])
	st.Restarts, _ = strconv.Atoi(p["NRestarts"])
	if !st.Loaded {
		return st, fmt.Errorf("service status: %w", ErrNotInstalled)
	}
	fmt.Fprintf(out, "%s: %s (%s), %s\n", u.UnitFile(), st.Active, st.Sub, st.Enabled)
	if st.Running() {
		times := fmt.Sprintf("%d times", st.Restarts)
		if st.Restarts == 1 {
			times = "once"
		}
		fmt.Fprintf(out, "  since %s, main PID %d, restarted %s\n", st.Since, st.MainPID, times)
	}
	if st.Text != "" {
		fmt.Fprintf(out, "  status: %s\n", st.Text)
	}
	fmt.Fprintf(out, "  unit: %s\n  log: journalctl -u %s -e\n", st.Path, u.Name)
	return st, nil
}

func parseShow(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m
}

func cmdStep(name string, args ...string) step {
	return step{
		desc: strings.Join(append([]string{name}, args...), " "),
		do: func(ctx context.Context) error {
			b, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(b))
			}
			return nil
		},
	}
}

func run(ctx context.Context, steps []step, out io.Writer) error {
	for _, s := range steps {
		fmt.Fprintln(out, s.desc)
		if err := s.do(ctx); err != nil {
			return err
		}
	}
	return nil
}

type group struct {
	gid     int
	members []string
}

// readGroups parses /etc/group. Tools are not used so that a dry run and
// the tests read the same file the install would change.
func readGroups(path string) (map[string]group, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]group{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 {
			continue
		}
		gid, _ := strconv.Atoi(f[2])
		g := group{gid: gid}
		if f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		m[f[0]] = g
	}
	return m, nil
}

func userExists(path, user string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && name == user {
			return true, nil
		}
	}
	return false, nil
}

// protectConfig makes the config root:USER 0640. It runs after useradd,
// so it reads the group file again.
func protectConfig(opts InstallOptions, cfg, user string) error {
	p := opts.path(cfg)
	groups, err := readGroups(opts.path("/etc/group"))
	if err != nil {
		return err
	}
	g, ok := groups[user]
	if !ok {
		return fmt.Errorf("group %s not found after creating the user", user)
	}
	if err := os.Chown(p, -1, g.gid); err != nil {
		return err
	}
	return os.Chmod(p, 0o640)
}

// copyFile copies src to dst. Unless overwrite, an existing dst with other
// contents is an error (ErrConfigExists): a user's edits are never lost.
func copyFile(src, dst string, mode os.FileMode, overwrite bool) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if !overwrite {
		old, err := os.ReadFile(dst)
		if err == nil && !bytes.Equal(old, b) {
			return fmt.Errorf("%s: %w", dst, ErrConfigExists)
		}
	}
	return writeFile(dst, b, mode)
}

// writeFile writes atomically: a temporary file renamed into place, so a
// crash never leaves half a unit or binary.
func writeFile(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
