// Package systemd makes camfeed a well-behaved systemd service: it writes
// the unit file (hardened, with a watchdog and a memory cap derived from the
// RAM budget), installs and removes it, and speaks the sd_notify protocol
// natively (READY, WATCHDOG, STATUS, STOPPING) without libsystemd.
package systemd

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Defaults used by DefaultUnitOptions and the .deb package.
const (
	DefaultName   = "camfeed"
	DefaultUser   = "camfeed"
	DefaultBinary = "/usr/bin/camfeed"
	DefaultConfig = "/etc/camfeed/camfeed.yaml"

	// DefaultFeedBudget is config.Default()'s buffer: 35 s of video at
	// 4 Mbit/s with half again for peaks (config.Feed.BudgetBytes), rounded
	// up to whole MiB.
	DefaultFeedBudget = 26 << 20
)

// Memory model behind MemoryMax. The hub holds up to about twice a feed's
// budget (a GOP may outgrow it once before the oldest is dropped); a camera
// child (rpicam-vid) shares the service's cgroup and needs about 64 MiB of
// its own; the Go runtime, WebRTC, RTSP and HTTP need a fixed base.
const (
	memBase    = 128 << 20
	memPerFeed = 64 << 20
)

// UnitOptions is everything the unit text depends on. The zero value of a
// field means its default (see DefaultUnitOptions).
type UnitOptions struct {
	Name        string // service name without .service; default camfeed
	Description string
	Binary      string // absolute path to the camfeed binary
	Config      string // absolute path to the config file; "" runs without --config
	User        string // the service user; default camfeed

	// Groups are added with SupplementaryGroups. Only name groups that
	// exist: systemd refuses to start a unit naming a missing group.
	// video opens /dev/video* and /dev/media*; render opens /dev/dma_heap
	// on Pi OS, where libcamera allocates its frame buffers.
	Groups []string

	RestartSec  time.Duration // default 2s
	WatchdogSec time.Duration // default 10s; camfeed pets it at half this

	// FeedBudgets holds each feed's RAM budget in bytes (config buffer;
	// convert a duration budget with FeedBudget). MemoryMax is computed
	// from them unless MemoryMax is set.
	FeedBudgets []int64
	MemoryMax   int64

	// WritePaths are the only places outside /run/camfeed (the runtime
	// directory) and /var/lib/camfeed (the state directory, for a
	// generated TLS certificate) where the service may write: recording
	// or clip directories, a FIFO's or unix_dir's directory.
	WritePaths []string
}

// DefaultUnitOptions returns the options of the packaged unit: the binary
// in /usr/bin, the config in /etc/camfeed and one feed with the default
// budget.
func DefaultUnitOptions() UnitOptions {
	return UnitOptions{
		Name:        DefaultName,
		Description: "camfeed low-latency H.264 camera feed server",
		Binary:      DefaultBinary,
		Config:      DefaultConfig,
		User:        DefaultUser,
		Groups:      []string{"video"},
		RestartSec:  2 * time.Second,
		WatchdogSec: 10 * time.Second,
		FeedBudgets: []int64{DefaultFeedBudget},
	}
}

func (o UnitOptions) withDefaults() UnitOptions {
	d := DefaultUnitOptions()
	if o.Name == "" {
		o.Name = d.Name
	}
	if o.Description == "" {
		o.Description = d.Description
	}
	if o.Binary == "" {
		o.Binary = d.Binary
	}
	if o.User == "" {
		o.User = d.User
	}
	if o.RestartSec == 0 {
		o.RestartSec = d.RestartSec
	}
	if o.WatchdogSec == 0 {
		o.WatchdogSec = d.WatchdogSec
	}
	if len(o.FeedBudgets) == 0 {
		o.FeedBudgets = d.FeedBudgets
	}
	return o
}

// FeedBudget turns a feed's buffer setting into bytes: bytes as given, or
// a duration at the feed's bitrate (10 Mbit/s when unset, rpicam-vid's
// ceiling for 1080p30 at high quality).
func FeedBudget(bytes int64, d time.Duration, bitrate int) int64 {
	if bytes > 0 {
		return bytes
	}
	if bitrate <= 0 {
		bitrate = 10_000_000
	}
	return int64(d.Seconds() * float64(bitrate) / 8)
}

// MemoryMax returns the memory cap for feeds with these budgets.
func MemoryMax(budgets []int64) int64 {
	total := int64(memBase)
	for _, b := range budgets {
		total += 2*b + memPerFeed
	}
	return total
}

// goMemLimit is camfeed's own share of memMax: the cgroup also holds one
// camera process per feed. Never below half of memMax.
func goMemLimit(memMax int64, feeds int) int64 {
	l := memMax - int64(feeds)*memPerFeed
	return max(l, memMax/2)
}

// UnitFile is the unit's file name, e.g. camfeed.service.
func (o UnitOptions) UnitFile() string { return o.withDefaults().Name + ".service" }

// Unit returns the text of the systemd unit.
//
// The hardening keeps what a camera server needs and nothing else: the
// file system is read-only except the runtime, state and configured write
// directories; devices are limited to V4L2 (cameras, the Pi's hardware
// encoder), the media controller and DMA heaps; the process cannot gain
// privileges. Restart=always plus the watchdog means a crashed or wedged
// process comes back within seconds, and GOMEMLIMIT (MemoryMax less the
// camera processes' share) makes the Go collector work harder before the
// kernel would kill the service.
func Unit(opts UnitOptions) string {
	o := opts.withDefaults()
	memMax := o.MemoryMax
	if memMax <= 0 {
		memMax = MemoryMax(o.FeedBudgets)
	}
	exec := systemdQuote(o.Binary)
	if o.Config != "" {
		exec += " --config " + systemdQuote(o.Config)
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# Written by camfeed service install. Run it again after changing the")
	w("# number of feeds or their buffers (MemoryMax depends on them), or put")
	w("# local changes in a drop-in: systemctl edit %s", o.Name)
	w("[Unit]")
	w("Description=%s", o.Description)
	w("Documentation=https://github.com/camfeed/camfeed/blob/main/docs/OPERATIONS.md")
	w("After=network-online.target")
	w("Wants=network-online.target")
	w("")
	w("[Service]")
	w("Type=notify")
	w("NotifyAccess=main")
	w("ExecStart=%s", exec)
	w("ExecReload=/bin/kill -HUP $MAINPID")
	w("Restart=always")
	w("RestartSec=%s", unitDuration(o.RestartSec))
	w("WatchdogSec=%s", unitDuration(o.WatchdogSec))
	w("TimeoutStartSec=90s")
	w("TimeoutStopSec=20s")
	w("User=%s", o.User)
	if len(o.Groups) > 0 {
		w("SupplementaryGroups=%s", strings.Join(o.Groups, " "))
	}
	w("RuntimeDirectory=%s", o.Name)
	w("RuntimeDirectoryMode=0750")
	w("StateDirectory=%s", o.Name)
	w("StateDirectoryMode=0750")
	w("Environment=GOMEMLIMIT=%dMiB", goMemLimit(memMax, len(o.FeedBudgets))>>20)
	w("MemoryMax=%s", unitBytes(memMax))
	w("LimitNOFILE=16384")
	w("")
	w("# Hardening")
	w("NoNewPrivileges=yes")
	w("ProtectSystem=strict")
	w("ProtectHome=%s", protectHome(o))
	w("PrivateTmp=yes")
	w("ProtectKernelTunables=yes")
	w("ProtectKernelModules=yes")
	w("ProtectKernelLogs=yes")
	w("ProtectControlGroups=yes")
	w("ProtectClock=yes")
	w("ProtectHostname=yes")
	w("RestrictNamespaces=yes")
	w("RestrictSUIDSGID=yes")
	w("LockPersonality=yes")
	w("SystemCallArchitectures=native")
	w("# AF_NETLINK lets WebRTC list the network interfaces.")
	w("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK")
	w("DevicePolicy=closed")
	w("DeviceAllow=char-video4linux rw")
	w("DeviceAllow=char-media rw")
	w("DeviceAllow=char-dma_heap rw")
	if dirs := writableDirs(o.Name, o.WritePaths); len(dirs) > 0 {
		w("ReadWritePaths=%s", strings.Join(dirs, " "))
	}
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	return b.String()
}

// protectHome is "read-only" when the binary or config lives under a home
// directory (a `go install` binary, a config kept in ~), which "yes" would
// hide from the service; otherwise homes are invisible.
func protectHome(o UnitOptions) string {
	for _, p := range []string{o.Binary, o.Config} {
		if underHome(p) {
			return "read-only"
		}
	}
	return "yes"
}

func underHome(p string) bool {
	for _, h := range []string{"/home/", "/root/", "/run/user/"} {
		if strings.HasPrefix(p, h) {
			return true
		}
	}
	return false
}

// writableDirs cleans, sorts and deduplicates the write paths, dropping
// empties and those already writable (the runtime and state directories).
func writableDirs(name string, paths []string) []string {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		p = path.Clean(p)
		if p == "/run/"+name || strings.HasPrefix(p, "/run/"+name+"/") ||
			p == "/var/lib/"+name || strings.HasPrefix(p, "/var/lib/"+name+"/") {
			continue
		}
		out = append(out, systemdQuote(p))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// unitBytes writes a size in whole MiB as systemd's "208M" (base 1024),
// otherwise in bytes.
func unitBytes(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%dM", n>>20)
	}
	return fmt.Sprint(n)
}

// unitDuration writes a duration the way systemd parses it: whole seconds
// as "10s", anything finer in milliseconds.
func unitDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// systemdQuote quotes a path for a unit file when it holds spaces, quotes
// or backslashes (systemd.syntax(7), "Quoting"), and doubles % so that
// systemd does not read a specifier (systemd.unit(5), "Specifiers").
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
