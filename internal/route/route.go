// Package route is where HTTP routes are mounted, each with the access
// class it needs. One guard, given when the Mux is made, enforces the
// class of the route a request matched: there is no second parser of
// URLs deciding who may see what, and a route cannot be mounted without
// saying who may use it.
package route

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/camfeed/camfeed/internal/auth"
)

type kind int

const (
	none     kind = iota // no class given: refused
	public               // no video, no secrets
	feedPath             // the feed is the {feed} path segment
	feedFunc             // the feed is chosen by the route (the default feed)
	noFeed               // about no one feed (lists, status, metrics, admin)
)

// Access is what a route needs: an action (auth.Read, auth.Publish,
// auth.Admin) on a feed, or nothing.
type Access struct {
	kind   kind
	action string
	feed   func(*http.Request) string
}

// The access classes.
var (
	// Public routes carry no video and no secrets: health checks, the
	// clock, the viewer's scripts.
	Public = Access{kind: public}
	// Read needs read permission on the feed named by the route's {feed}.
	Read = Access{kind: feedPath, action: auth.Read}
	// ReadAll needs read permission without naming a feed: the feed list,
	// the status, the metrics.
	ReadAll = Access{kind: noFeed, action: auth.Read}
	// Publish needs publish permission on {feed} (saving an event clip).
	Publish = Access{kind: feedPath, action: auth.Publish}
	// Admin needs the admin permission.
	Admin = Access{kind: noFeed, action: auth.Admin}
)

// ReadOf needs read permission on the feed that feed picks for the
// request (the default feed's /stream.h264; GET / for a player).
func ReadOf(feed func(*http.Request) string) Access {
	return Access{kind: feedFunc, action: auth.Read, feed: feed}
}

// Valid reports whether a is one of the classes (the zero Access is not).
func (a Access) Valid() bool { return a.kind != none }

// Open reports whether the route needs no credentials at all.
func (a Access) Open() bool { return a.kind == public }

// Action is what the route asks to do ("" for Public).
func (a Access) Action() string { return a.action }

// Feed returns the feed a request to the route is about, "" for routes
// about no one feed.
func (a Access) Feed(r *http.Request) string {
	switch a.kind {
	case feedPath:
		return r.PathValue("feed")
	case feedFunc:
		return a.feed(r)
	}
	return ""
}

func (a Access) String() string {
	switch a.kind {
	case public:
		return "public"
	case feedPath:
		return a.action + " {feed}"
	case feedFunc:
		return a.action + " (chosen feed)"
	case noFeed:
		return a.action
	}
	return "none"
}

// Guard wraps a route's handler so that it enforces the route's access.
type Guard func(a Access, next http.Handler) http.Handler

// Route is one mounted pattern and its class.
type Route struct {
	Pattern string
	Access  Access
}

// Mux is an http.ServeMux whose every route has an access class.
type Mux struct {
	mux    *http.ServeMux
	guard  Guard
	routes []Route
}

// New returns an empty Mux whose routes are wrapped by guard.
func New(guard Guard) *Mux { return &Mux{mux: http.NewServeMux(), guard: guard} }

// Handle mounts h at pattern (http.ServeMux syntax) with access a. A
// route without a valid class is refused with 500 at every request (and
// TestEveryRouteHasAnAccessClass fails).
func (m *Mux) Handle(pattern string, a Access, h http.Handler) {
	m.routes = append(m.routes, Route{Pattern: pattern, Access: a})
	if !a.Valid() {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "camfeed: this route has no access class", http.StatusInternalServerError)
		})
	}
	m.mux.Handle(pattern, m.guard(a, h))
}

// HandleFunc is Handle for a function.
func (m *Mux) HandleFunc(pattern string, a Access, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, a, http.HandlerFunc(h))
}

// ServeHTTP dispatches to the matching route.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// Routes returns every mounted route, in mounting order.
func (m *Mux) Routes() []Route { return slices.Clone(m.routes) }

// Reserved returns the first path segments that routes use literally
// ("api", "healthz", "stream.h264", ...). A feed with one of these names
// would be shadowed by, or shadow, a route.
func (m *Mux) Reserved() []string {
	var out []string
	for _, r := range m.routes {
		p := r.Pattern
		if i := strings.IndexByte(p, ' '); i >= 0 {
			p = p[i+1:]
		}
		seg, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if seg == "" || strings.HasPrefix(seg, "{") || slices.Contains(out, seg) {
			continue
		}
		out = append(out, seg)
	}
	slices.Sort(out)
	return out
}

// CheckFeedName returns an error when a feed called name would clash with
// a route.
func (m *Mux) CheckFeedName(name string) error {
	if slices.Contains(m.Reserved(), name) {
		return fmt.Errorf("feed %q: the name is taken by camfeed's own /%s route; rename the feed (taken: %s)",
			name, name, strings.Join(m.Reserved(), ", "))
	}
	return nil
}

// Unguarded returns a Mux that lets every request through, for tests and
// tools that mount one output on its own.
func Unguarded() *Mux {
	return New(func(_ Access, next http.Handler) http.Handler { return next })
}

// Handler returns the handler and pattern that would serve r ("" when
// none), as http.ServeMux.Handler does.
func (m *Mux) Handler(r *http.Request) (http.Handler, string) { return m.mux.Handler(r) }
