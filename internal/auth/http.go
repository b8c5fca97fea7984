package auth

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
)

// Realm names camfeed in WWW-Authenticate challenges.
const Realm = "camfeed"

type ctxKey struct{}

// UserFrom returns the user a request was authenticated as, "" when
// anonymous.
func UserFrom(ctx context.Context) string {
	s, _ := ctx.Value(ctxKey{}).(string)
	return s
}

// RequestCredentials reads credentials from a request: Authorization
// Basic or Bearer, or an access_token query parameter (RFC 6750 §2.3) for
// clients that cannot set headers, such as a <video> element playing HLS
// or a browser WebSocket. A token in a URL can end up in logs and
// history; prefer the header where the client allows it.
func RequestCredentials(r *http.Request) Credentials {
	if u, p, ok := r.BasicAuth(); ok {
		return Credentials{User: u, Password: p, From: remoteIP(r.RemoteAddr)}
	}
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return Credentials{Token: strings.TrimSpace(h[7:])}
	}
	if t := r.URL.Query().Get("access_token"); t != "" {
		return Credentials{Token: t}
	}
	return Credentials{}
}

func remoteIP(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Middleware checks every request for action on the feed that feed names
// (nil, or returning "", for feed-independent pages). It answers 401 with
// Basic and Bearer challenges when credentials are missing or wrong (a
// browser then asks for a user and password), and 403 when the user
// lacks the permission or admin is asked of a camfeed without users.
//
// CORS preflights (OPTIONS with Access-Control-Request-Method) pass
// without credentials, since browsers never send them there; the handler
// must answer those with CORS headers only.
func (a *Authenticator) Middleware(action string, feed func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				next.ServeHTTP(w, r)
				return
			}
			f := ""
			if feed != nil {
				f = feed(r)
			}
			c := RequestCredentials(r)
			name, err := a.Check(f, action, c)
			if err != nil {
				if name == "" {
					name = c.User
				}
				a.logRefusal(r.RemoteAddr, name, f, action, err)
				Refuse(w, err)
				return
			}
			if name != "" {
				r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, name))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Refuse writes the HTTP answer for an error from Check.
func Refuse(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var th *ThrottledError
	switch {
	case errors.As(err, &th):
		w.Header().Set("Retry-After", retrySeconds(th.RetryAfter))
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte("camfeed: " + th.Error() + "\n"))
	case errors.Is(err, ErrNoAdmin):
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte("camfeed: admin actions need a user with the admin permission; add one under users: in the config\n"))
	case errors.Is(err, ErrForbidden):
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte("camfeed: this user may not do that\n"))
	default:
		w.Header().Add("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("camfeed: a user and password (or a token) are needed\n"))
	}
}
