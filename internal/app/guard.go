package app

import (
	"net/http"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/route"
)

// guard enforces a route's access class: every HTTP route is mounted with
// one (internal/route), and this is the one place that checks it. Routes
// that carry no video and no secrets are open; every other request is
// authenticated and authorized for the route's action on the route's feed
// by the current authenticator (a reload swaps it). Admission (viewer
// limits) is the door's, when an output lets a viewer in.
//
// Routes that change state (publish: saving a clip; admin) also refuse
// requests made by a web page on another site, so that a page a household
// member happens to open cannot act with their browser's credentials or
// from inside the LAN (origin.Checker: Sec-Fetch-Site, Origin).
func (a *App) guard(ac route.Access, next http.Handler) http.Handler {
	if ac.Open() {
		return next
	}
	if ac.Action() == auth.Publish || ac.Action() == auth.Admin {
		next = a.origins.Middleware(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.authz.Load().Middleware(ac.Action(), ac.Feed)(next).ServeHTTP(w, r)
	})
}
