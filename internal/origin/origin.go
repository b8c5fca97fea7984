// Package origin refuses cross-origin state-changing requests (CSRF): a
// web page on another site, opened by someone on the LAN, must not be
// able to save, delete or change anything in camfeed through that
// person's browser, even though the browser may reach camfeed and, with
// no users configured, needs no credentials.
//
// Browsers say where a request comes from: Sec-Fetch-Site (all current
// browsers) and Origin (older ones too). A POST, PUT, PATCH or DELETE
// whose Sec-Fetch-Site is cross-site or same-site, or whose Origin is not
// the request's own host nor an allowed origin, is refused. Requests with
// neither header (curl, Home Assistant, scripts) pass: they are not made
// by a browser on behalf of a page. GET, HEAD and OPTIONS always pass.
//
// It is net/http's CrossOriginProtection (Go 1.25) with camfeed's
// allowed_origins as trusted origins. "*" in allowed_origins lets any
// site embed the feeds (CORS, reading); it does not let any site change
// things, so it is not trusted here.
package origin

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrCrossOrigin is what Check returns for a refused request.
var ErrCrossOrigin = errors.New("origin: cross-origin request refused")

// Checker decides whether a request may change state. The zero value and
// nil trust no other origin.
type Checker struct {
	p *http.CrossOriginProtection
}

// New returns a Checker that trusts allowed (allowed_origins, such as
// "https://ha.example:8123"). Entries that are not an origin, and "*",
// are ignored: they can only make the check stricter.
func New(allowed []string) *Checker {
	p := http.NewCrossOriginProtection()
	for _, o := range allowed {
		if o != "*" {
			_ = p.AddTrustedOrigin(o)
		}
	}
	return &Checker{p: p}
}

var defaultProtection = http.NewCrossOriginProtection()

// Check returns nil when r may go ahead, or an error wrapping
// ErrCrossOrigin that says why in words.
func (c *Checker) Check(r *http.Request) error {
	p := defaultProtection
	if c != nil && c.p != nil {
		p = c.p
	}
	if err := p.Check(r); err != nil {
		return fmt.Errorf("%w: %w", ErrCrossOrigin, err)
	}
	return nil
}

// Allow checks r and, when it is refused, answers 403 with the reason and
// returns false. Handlers of state-changing routes call it first.
func (c *Checker) Allow(w http.ResponseWriter, r *http.Request) bool {
	if err := c.Check(r); err != nil {
		Refuse(w, r)
		return false
	}
	return true
}

// Refuse answers a refused request: 403 with the reason in words.
func Refuse(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	msg := "camfeed: cross-origin request refused: a page on another site may not change anything here"
	if o := r.Header.Get("Origin"); o != "" {
		msg += " (Origin " + o + "; add it to allowed_origins to trust it)"
	}
	http.Error(w, msg, http.StatusForbidden)
}

// Middleware applies the check to every request through next: the app
// puts it in front of all its routes (only state-changing methods are
// ever refused).
func (c *Checker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.Allow(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}
