package systemd

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Notifier speaks the sd_notify protocol (sd_notify(3)): each state is one
// datagram of NEWLINE-separated KEY=VALUE lines sent to the unix datagram
// socket named by $NOTIFY_SOCKET. A name starting with '@' is in the Linux
// abstract namespace; Go's net package maps the '@' to the leading NUL.
//
// A nil Notifier, or one made without a socket (not started by systemd, or
// Type= is not notify), does nothing, so callers never check.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration

	mu     sync.Mutex
	status string // the last STATUS= sent, to send only changes
}

// NewNotifier returns a Notifier for socket (a path or @abstract name; ""
// disables it) with the given watchdog interval (0: no watchdog).
func NewNotifier(socket string, watchdog time.Duration) *Notifier {
	n := &Notifier{watchdog: watchdog}
	if socket != "" {
		n.addr = &net.UnixAddr{Name: socket, Net: "unixgram"}
	}
	return n
}

// NotifierFromEnv reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID
// and unsets them, as sd_notify's unset_environment does, so that a
// camera process camfeed starts does not inherit them and talk to systemd
// in camfeed's name.
func NotifierFromEnv() *Notifier {
	n := NewNotifier(os.Getenv("NOTIFY_SOCKET"), watchdogFromEnv(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid()))
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(k)
	}
	return n
}

// watchdogFromEnv implements sd_watchdog_enabled(3): the interval applies
// only if WATCHDOG_PID is unset or names this process.
func watchdogFromEnv(usec, pid string, self int) time.Duration {
	if usec == "" {
		return 0
	}
	if pid != "" {
		if p, err := strconv.Atoi(pid); err != nil || p != self {
			return 0
		}
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// Enabled reports whether messages go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// WatchdogInterval is WatchdogSec of the unit, or 0 when there is none.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Notify sends one message, e.g. "READY=1\nSTATUS=ok". It returns nil
// when the Notifier is disabled.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// Ready tells systemd that start-up is done; until then `systemctl start`
// waits, and units ordered after camfeed wait too.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Watchdog pets the watchdog. Missing it for WatchdogSec makes systemd
// kill and restart camfeed.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// Reloading says a SIGHUP reload began; send Ready when it is done.
func (n *Notifier) Reloading() error { return n.Notify("RELOADING=1") }

// Stopping says shutdown began, so systemd does not see the exit as a
// crash in the meantime.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Status sets the one-line text `systemctl status` shows. Newlines would
// end the field, so they become spaces.
func (n *Notifier) Status(s string) error {
	if !n.Enabled() {
		return nil
	}
	s = strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
	n.mu.Lock()
	n.status = s
	n.mu.Unlock()
	return n.Notify("STATUS=" + s)
}

// ReadyWhen sends READY=1 when ready is closed (the listeners are up and
// the first feed produced a keyframe) or when timeout passes, whichever
// comes first: a camera that is unplugged must not hold up boot or make
// systemd give up on the service. It returns false if ctx ended first.
func (n *Notifier) ReadyWhen(ctx context.Context, ready <-chan struct{}, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-ready:
	case <-t.C:
	}
	n.Ready()
	return true
}

// DefaultStatusInterval is how often Run refreshes STATUS= when there is
// no watchdog.
const DefaultStatusInterval = 5 * time.Second

// Run reports health until ctx ends. Every half watchdog interval (or
// DefaultStatusInterval without a watchdog) it calls healthy. It sends
// WATCHDOG=1 only when healthy says true, so a wedged feed stops the
// petting and systemd restarts the process after WatchdogSec; and it sends
// STATUS= with the summary whenever that changes. healthy must be quick
// and must not block.
func (n *Notifier) Run(ctx context.Context, healthy func() (ok bool, summary string)) {
	if !n.Enabled() {
		return
	}
	interval := n.watchdog / 2
	if interval <= 0 {
		interval = DefaultStatusInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, summary := healthy()
		msg := ""
		if ok && n.watchdog > 0 {
			msg = "WATCHDOG=1"
		}
		n.mu.Lock()
		changed := summary != n.status
		n.mu.Unlock()
		if changed {
			if msg != "" {
				msg += "\n"
			}
			summary = strings.NewReplacer("\n", " ", "\r", " ").Replace(summary)
			msg += "STATUS=" + summary
			n.mu.Lock()
			n.status = summary
			n.mu.Unlock()
		}
		if msg != "" {
			n.Notify(msg)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
