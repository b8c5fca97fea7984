// Package auth decides who may watch, publish and administer camfeed. One
// Authenticator serves every output: HTTP (raw H.264, WebSocket, HLS,
// WHEP, the API and /metrics) through Middleware, RTSP through Allow, and
// the raw TCP output, which has no way to carry credentials, through an IP
// allow-list (AllowTCP).
//
// The default is safe on a home LAN without being in the way: with no
// users configured, anyone who can reach camfeed may watch and publish
// (and save clips, which needs publish), as before, but admin actions
// (deleting clips, the profiler) are refused outright. Once a user is configured, everything needs
// credentials except feeds marked anonymous_read.
package auth

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Actions a request asks to do.
const (
	Read    = "read"    // watch a feed; with feed "" the status page, feed list and metrics
	Publish = "publish" // send video into a feed whose source is publish
	Admin   = "admin"   // delete saved clips, the profiler (/debug/pprof/)
)

// Errors Check returns. HTTP maps them to 401, 403 and 403.
var (
	ErrUnauthenticated = errors.New("auth: credentials required or wrong")
	ErrForbidden       = errors.New("auth: not permitted")
	ErrNoAdmin         = errors.New("auth: admin needs a configured user (users: in the config)")
)

// Config is the auth part of camfeed's configuration.
//
//	users:
//	  - name: alice
//	    password: $2a$10$...      # camfeed passwd; or plain:SECRET for RTSP Digest
//	    tokens: [sha256:9f86...]  # camfeed passwd --token
//	    permissions: [read, publish:door, admin]
//	tcp_allow: [192.168.1.0/24]
//	feeds:
//	  door:
//	    anonymous_read: true
type Config struct {
	Users []User `yaml:"users"`

	// AnonymousRead lets anyone watch a feed without credentials. The
	// key is a feed name, or "*" for every feed and the feed-independent
	// pages (status, feed list, metrics). A feed not in the map follows
	// "*"; without "*", anonymous reading is allowed only when no user is
	// configured. Filled from feeds.NAME.anonymous_read and the top-level
	// anonymous_read.
	AnonymousRead map[string]bool `yaml:"-"`

	// TCPAllow lists who may connect to the raw TCP output, as addresses
	// or CIDR prefixes. See AllowTCP.
	TCPAllow []string `yaml:"tcp_allow"`

	// Logger gets one line per refusal, at most one a second (the rest are
	// counted into the next line). nil: slog.Default().
	Logger *slog.Logger `yaml:"-"`

	// OnRefuse, if set, is told every refusal's reason: "unauthenticated",
	// "forbidden" or "throttled" (metrics, which outlive a reload).
	OnRefuse func(reason string) `yaml:"-"`

	// FailuresPerIP and Failures are the wrong passwords allowed per
	// minute from one address and from all together; past either,
	// passwords are not checked and Check returns a *ThrottledError (HTTP
	// 429). 0: no limit. Filled from limits.max_auth_failures_per_ip and
	// limits.max_auth_failures.
	FailuresPerIP, Failures int `yaml:"-"`
	// PasswordChecks is how many password hashes may be computed at once
	// (limits.max_password_checks); 0 means 2.
	PasswordChecks int `yaml:"-"`
}

// User is one account.
type User struct {
	Name string `yaml:"name"`
	// Password is a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$)
	// hash, as `camfeed passwd` prints, or "plain:SECRET". A plain
	// password is readable by anyone who can read the config, but RTSP
	// Digest needs it; with a hash, RTSP offers Basic, which VLC, ffmpeg
	// and GStreamer all support.
	Password string `yaml:"password"`
	// Tokens are bearer tokens: "sha256:HEX" of the token (camfeed passwd
	// --token prints both), or the token itself.
	Tokens []string `yaml:"tokens"`
	// Permissions: read, publish, admin, or read:FEED and publish:FEED
	// for one feed. admin implies everything.
	Permissions []string `yaml:"permissions"`
}

type perm struct{ action, feed string } // feed "" = every feed

type user struct {
	name   string
	secret secret
	perms  []perm
}

// Authenticator answers who may do what. It is safe for concurrent use.
type Authenticator struct {
	users     map[string]*user
	tokens    map[[sha256.Size]byte]*user
	anon      map[string]bool
	tcpAllow  []netip.Prefix
	log       *slog.Logger
	logs      limiter
	onRefuse  func(reason string)
	cache     verifiedCache
	throttle  throttle
	slots     hashSlots
	dummy     secret // compared when the user is unknown, for even timing
	unauth    atomic.Uint64
	forbidden atomic.Uint64
	throttled atomic.Uint64
	hashed    atomic.Uint64 // password hashes computed: the cost the cache saves
}

// New checks cfg and builds an Authenticator. Its errors name the user
// and key at fault.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{
		users:    map[string]*user{},
		tokens:   map[[sha256.Size]byte]*user{},
		anon:     cfg.AnonymousRead,
		log:      cfg.Logger,
		onRefuse: cfg.OnRefuse,

		throttle: throttle{perIP: cfg.FailuresPerIP, total: cfg.Failures},
		slots:    make(hashSlots, cmp.Or(cfg.PasswordChecks, 2)),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for i, u := range cfg.Users {
		at := fmt.Sprintf("users[%d]", i)
		if u.Name == "" {
			bad("%s: name is empty", at)
			continue
		}
		at += " (" + u.Name + ")"
		if strings.ContainsAny(u.Name, ":") {
			bad("%s: name: a colon cannot be sent in HTTP Basic auth", at)
		}
		if _, dup := a.users[u.Name]; dup {
			bad("%s: name: %q appears twice", at, u.Name)
		}
		nu := &user{name: u.Name}
		if u.Password == "" && len(u.Tokens) == 0 {
			bad("%s: give a password (camfeed passwd) or tokens", at)
		}
		if u.Password != "" {
			s, err := parseSecret(u.Password)
			if err != nil {
				bad("%s: password: %v", at, err)
			}
			nu.secret = s
		}
		for j, t := range u.Tokens {
			sum, err := parseToken(t)
			if err != nil {
				bad("%s: tokens[%d]: %v", at, j, err)
				continue
			}
			if _, dup := a.tokens[sum]; dup {
				bad("%s: tokens[%d]: the same token is given twice", at, j)
			}
			a.tokens[sum] = nu
		}
		if len(u.Permissions) == 0 {
			bad("%s: permissions: give at least one of read, publish, admin (or read:FEED, publish:FEED)", at)
		}
		for _, p := range u.Permissions {
			action, feed, _ := strings.Cut(p, ":")
			switch {
			case action == Admin && feed == "", (action == Read || action == Publish):
				nu.perms = append(nu.perms, perm{action, feed})
			default:
				bad("%s: permissions: %q is not read, publish, admin, read:FEED or publish:FEED", at, p)
			}
		}
		a.users[u.Name] = nu
	}
	for _, s := range cfg.TCPAllow {
		p, err := parsePrefix(s)
		if err != nil {
			bad("tcp_allow: %q is not an address or CIDR prefix such as 192.168.1.0/24", s)
			continue
		}
		a.tcpAllow = append(a.tcpAllow, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a.dummy, _ = parseSecret(dummyHash)
	return a, nil
}

// dummyHash is a bcrypt hash of a random password at the default cost.
// (A variable so that tests can make it cheap.)
var dummyHash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"

// HasUsers reports whether any user is configured.
func (a *Authenticator) HasUsers() bool { return len(a.users) > 0 }

// Credentials are what a client presented. All empty means anonymous.
type Credentials struct {
	User, Password string
	Token          string
	// From is the client's address, which wrong passwords are counted
	// against (zero: only toward the limit over all addresses).
	From netip.Addr
}

func (c Credentials) empty() bool { return c.User == "" && c.Password == "" && c.Token == "" }

// Check decides whether c may do action on feed ("" for what belongs to
// no feed). It returns the user's name ("" when anonymous) or
// ErrUnauthenticated (no or wrong credentials: ask for them), ErrForbidden
// (a known user lacking the permission) or ErrNoAdmin.
func (a *Authenticator) Check(feed, action string, c Credentials) (string, error) {
	if c.empty() {
		if a.Anonymous(feed, action) {
			return "", nil
		}
		if action == Admin && !a.HasUsers() {
			return "", ErrNoAdmin
		}
		return "", ErrUnauthenticated
	}
	u, err := a.authenticate(c)
	if err != nil {
		return "", err
	}
	if u == nil {
		return "", ErrUnauthenticated
	}
	if !u.can(action, feed) {
		return u.name, ErrForbidden
	}
	return u.name, nil
}

// Allow is Check reduced to yes or no, for RTSP and other protocols that
// answer every refusal the same way.
func (a *Authenticator) Allow(feed, action, username, password string) bool {
	_, err := a.Check(feed, action, Credentials{User: username, Password: password})
	return err == nil
}

// Anonymous reports whether action on feed needs no credentials.
func (a *Authenticator) Anonymous(feed, action string) bool {
	switch action {
	case Admin:
		return false
	case Publish:
		return !a.HasUsers()
	}
	if feed != "" {
		if v, ok := a.anon[feed]; ok {
			return v
		}
	}
	if v, ok := a.anon["*"]; ok {
		return v
	}
	return !a.HasUsers()
}

// CheckUser authorizes a user that the protocol authenticated itself
// (RTSP Digest, with the secret from Password).
func (a *Authenticator) CheckUser(feed, action, name string) error {
	u := a.users[name]
	if u == nil {
		return ErrUnauthenticated
	}
	if !u.can(action, feed) {
		return ErrForbidden
	}
	return nil
}

// Password returns a user's plaintext password when the config holds one
// (plain:SECRET), for RTSP Digest. ok is false for hashed passwords.
func (a *Authenticator) Password(name string) (pw string, ok bool) {
	u := a.users[name]
	if u == nil || u.secret.kind != kindPlain {
		return "", false
	}
	return u.secret.plain, true
}

// DigestCapable reports whether every user with a password has it in
// plain text, so that RTSP may offer Digest as well as Basic.
func (a *Authenticator) DigestCapable() bool {
	for _, u := range a.users {
		if u.secret.kind != kindPlain && u.secret.kind != kindNone {
			return false
		}
	}
	return true
}

// Refused returns how many requests were refused for missing or wrong
// credentials and for missing permissions, for metrics.
func (a *Authenticator) Refused() (unauthenticated, forbidden uint64) {
	return a.unauth.Load(), a.forbidden.Load()
}

// Throttled returns how many requests were refused with a
// *ThrottledError, their password unchecked.
func (a *Authenticator) Throttled() uint64 { return a.throttled.Load() }

// Hashed returns how many password hashes were computed: what the cache
// and the throttle save.
func (a *Authenticator) Hashed() uint64 { return a.hashed.Load() }

// authenticate finds the user c names and checks the password: from the
// verified cache when it can (every protocol passing a password, HTTP and
// RTSP Basic, comes through here), else by hashing, which is throttled
// per address and bounded in concurrency. A nil user with a nil error is
// a wrong password or an unknown token.
func (a *Authenticator) authenticate(c Credentials) (*user, error) {
	if c.Token != "" {
		return a.tokens[sha256.Sum256([]byte(c.Token))], nil // no hashing cost, 256-bit tokens: nothing to throttle
	}
	u := a.users[c.User]
	key := cacheKey(c.User, c.Password)
	if u != nil && u.secret.kind != kindNone && a.cache.has(key) {
		return u, nil
	}
	from := c.From.Unmap()
	if err := a.throttle.allow(from, time.Now()); err != nil {
		return nil, err
	}
	if !a.slots.acquire() {
		return nil, &ThrottledError{RetryAfter: time.Second, Busy: true}
	}
	a.hashed.Add(1)
	var ok bool
	if u == nil || u.secret.kind == kindNone {
		a.dummy.verify(c.Password) // as slow as a real check: no user enumeration by timing
	} else {
		ok = u.secret.verify(c.Password)
	}
	a.slots.release()
	if !ok {
		a.throttle.fail(from, time.Now())
		return nil, nil
	}
	a.cache.add(key)
	return u, nil
}

func (u *user) can(action, feed string) bool {
	for _, p := range u.perms {
		if p.action == Admin {
			return true
		}
		if p.action == action && (p.feed == "" || p.feed == feed) {
			return true
		}
	}
	return false
}

// parseToken returns the SHA-256 of a configured token.
func parseToken(t string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if h, ok := strings.CutPrefix(t, "sha256:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return sum, errors.New("sha256: needs 64 hex digits")
		}
		copy(sum[:], b)
		return sum, nil
	}
	if len(t) < 16 {
		return sum, errors.New("a token needs at least 16 characters; camfeed passwd --token makes one")
	}
	return sha256.Sum256([]byte(t)), nil
}

// verifiedCache remembers recently verified user+password pairs (by their
// SHA-256) for a few minutes. bcrypt at cost 10 takes about 80 ms on a
// Pi 4 and several hundred on a Zero: an HLS player sending Basic auth
// with every segment would otherwise spend a core on it.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]time.Time
}

const (
	cacheTTL = 5 * time.Minute
	cacheMax = 1024
)

func cacheKey(user, pw string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pw))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (c *verifiedCache) has(k [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[k]
	return ok && time.Since(t) < cacheTTL
}

func (c *verifiedCache) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheMax {
		c.m = map[[sha256.Size]byte]time.Time{}
	}
	c.m[k] = time.Now()
}

// limiter lets one log line a second through and counts the rest.
type limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *limiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		return false, 0
	}
	l.last = now
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

func (a *Authenticator) logRefusal(remote, name, feed, action string, err error) {
	reason := "unauthenticated"
	switch {
	case errors.Is(err, ErrForbidden) || errors.Is(err, ErrNoAdmin) || errors.Is(err, errTCPNotAllowed) || errors.Is(err, errTCPPublishNotAllowed):
		a.forbidden.Add(1)
		reason = "forbidden"
	case errors.Is(err, ErrThrottled):
		a.throttled.Add(1)
		reason = "throttled"
	default:
		a.unauth.Add(1)
	}
	if a.onRefuse != nil {
		a.onRefuse(reason)
	}
	ok, n := a.logs.allow(time.Now())
	if !ok {
		return
	}
	attrs := []any{"remote", remote, "action", action, "reason", err}
	if feed != "" {
		attrs = append(attrs, "feed", feed)
	}
	if name != "" {
		attrs = append(attrs, "user", name)
	}
	if n > 0 {
		attrs = append(attrs, "more_refused", n)
	}
	a.log.Warn("auth: refused", attrs...)
}

// constantEqual compares without leaking where the first difference is.
func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// AnonymousReadMap builds Config.AnonymousRead from the config's top-level
// anonymous_read and each feed's (nil: not set).
func AnonymousReadMap(global *bool, feeds map[string]*bool) map[string]bool {
	m := map[string]bool{}
	if global != nil {
		m["*"] = *global
	}
	for name, v := range feeds {
		if v != nil {
			m[name] = *v
		}
	}
	return m
}
