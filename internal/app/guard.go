package app

import (
	"errors"
	"net/http"
	"strings"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/limits"
)

// access says what a request needs: an action on a feed ("" for pages
// that are about no one feed), or nothing at all.
func (a *App) access(r *http.Request) (action, feed string, stream, open bool) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case p == "healthz" || p == "time" || strings.HasPrefix(p, "assets/"):
		return "", "", false, true // no video and no secrets: health checks and the viewer's assets
	case p == "metrics":
		return auth.Read, "", false, false
	case strings.HasPrefix(p, "api/"):
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if f, ok := feedOfAPI(p); ok {
				return auth.Read, f, false, false
			}
			return auth.Read, "", false, false
		}
		if f, ok := feedOfAPI(p); ok && r.Method == http.MethodPost && strings.HasSuffix(p, "/clips") {
			return auth.Publish, f, false, false // an event trigger saving a clip
		}
		return auth.Admin, "", false, false
	case p == "":
		if wantsHTML(r) {
			return auth.Read, "", false, false // the feed list
		}
		return auth.Read, a.defaultFeed(), true, false
	case p == "stream.h264":
		return auth.Read, a.defaultFeed(), true, false
	}
	var rest string
	feed, rest, _ = strings.Cut(p, "/")
	if _, ok := a.Hub(feed); !ok {
		return auth.Read, "", false, false // 404 from the handler, after auth
	}
	stream = rest == "stream.h264" || rest == "ws"
	return auth.Read, feed, stream, false
}

// feedOfAPI finds FEED in /api/v1/feeds/FEED/...
func feedOfAPI(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "api/v1/feeds/")
	if !ok {
		return "", false
	}
	f, _, _ := strings.Cut(rest, "/")
	return f, f != ""
}

func wantsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

// guard is the one authentication and admission layer in front of every
// HTTP output: raw H.264, WebSocket/MSE, WHEP, HLS, clips, the API and the
// metrics. Stream requests also count against the viewer limits, with a
// clear 503 when a feed or an address is full.
func (a *App) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action, feed, stream, open := a.access(r)
		inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if stream {
				release, err := a.viewers.Admit(w, r, feed)
				if err != nil {
					var fe *limits.FullError
					if errors.As(err, &fe) {
						a.metrics.ViewerRejected(fe.Limit)
					}
					return
				}
				defer release()
			}
			next.ServeHTTP(w, r)
		})
		if open {
			inner.ServeHTTP(w, r)
			return
		}
		a.authz.Load().Middleware(action, func(*http.Request) string { return feed })(inner).ServeHTTP(w, r)
	})
}
