package auth

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"
)

// ErrThrottled is wrapped by every *ThrottledError, for errors.Is.
var ErrThrottled = errors.New("auth: too many failed logins")

// ThrottledError refuses a password check without doing it: the address
// (or everyone together) sent too many wrong passwords lately, or the
// password-hashing slots stayed busy. HTTP answers 429 with Retry-After.
type ThrottledError struct {
	RetryAfter time.Duration
	Busy       bool // the hashing slots were full, not a failure budget
}

func (e *ThrottledError) Error() string {
	if e.Busy {
		return "too many logins at once; try again in " + retrySeconds(e.RetryAfter) + " s"
	}
	return "too many wrong passwords; try again in " + retrySeconds(e.RetryAfter) + " s"
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

func retrySeconds(d time.Duration) string {
	return fmt.Sprint(max(1, int(math.Ceil(d.Seconds()))))
}

// failureWindow is the period the failure budgets refill over.
const failureWindow = time.Minute

// throttle keeps failure budgets: a token bucket per address and one for
// everyone, each holding up to its limit and refilling that many per
// minute. A wrong password spends a token; a password is not even
// checked while either bucket is empty, so a guesser costs camfeed
// nothing once over the limit. A correct password spends nothing, and
// viewers whose password is in the verified cache never reach here.
type throttle struct {
	perIP, total int // 0: no limit

	mu  sync.Mutex
	ips map[netip.Addr]*bucket
	all bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// fill refills b as of now, up to limit, and returns its tokens.
func (b *bucket) fill(limit int, now time.Time) float64 {
	if b.at.IsZero() {
		b.tokens, b.at = float64(limit), now
		return b.tokens
	}
	b.tokens = min(float64(limit), b.tokens+now.Sub(b.at).Seconds()*float64(limit)/failureWindow.Seconds())
	b.at = now
	return b.tokens
}

// wait is how long until b has a whole token again.
func (b *bucket) wait(limit int) time.Duration {
	return time.Duration((1 - b.tokens) * float64(failureWindow) / float64(limit))
}

// allow reports whether a password from ip may be checked now.
func (t *throttle) allow(ip netip.Addr, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total > 0 && t.all.fill(t.total, now) < 1 {
		return &ThrottledError{RetryAfter: t.all.wait(t.total)}
	}
	if t.perIP > 0 && ip.IsValid() {
		if b := t.ips[ip]; b != nil && b.fill(t.perIP, now) < 1 {
			return &ThrottledError{RetryAfter: b.wait(t.perIP)}
		}
	}
	return nil
}

// maxTracked bounds the addresses remembered; past it, those whose
// bucket has refilled are forgotten.
const maxTracked = 4096

// fail spends a token of ip's budget and of everyone's.
func (t *throttle) fail(ip netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total > 0 {
		t.all.fill(t.total, now)
		t.all.tokens--
	}
	if t.perIP <= 0 || !ip.IsValid() {
		return
	}
	if t.ips == nil {
		t.ips = map[netip.Addr]*bucket{}
	}
	b := t.ips[ip]
	if b == nil {
		if len(t.ips) >= maxTracked {
			for k, o := range t.ips {
				if o.fill(t.perIP, now) >= float64(t.perIP) {
					delete(t.ips, k)
				}
			}
		}
		b = &bucket{}
		t.ips[ip] = b
	}
	b.fill(t.perIP, now)
	b.tokens--
}

// hashSlots bounds the password hashes computed at once. bcrypt at cost
// 10 is ~80 ms of a core on a Pi 4; without a bound, sixteen parallel
// guesses take every core and a real viewer's login waits behind them.
type hashSlots chan struct{}

// slotWait is the longest a password check queues for a slot before it
// is refused as busy.
const slotWait = 5 * time.Second

func (s hashSlots) acquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (s hashSlots) release() { <-s }
