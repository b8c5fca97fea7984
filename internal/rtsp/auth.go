package rtsp

import (
	"strings"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// realm is the authentication realm in challenges (RFC 2617 section 1.2).
const realm = "camfeed"

// digestCapable is implemented by an Auth that can tell whether every
// user's password is known in plain text. When it says no, only Basic is
// offered: a client offered Digest uses it, and Digest cannot be checked
// against a hashed password.
type digestCapable interface{ DigestCapable() bool }

// connState is what the server keeps per RTSP connection (its user data).
type connState struct {
	nonce string // the Digest nonce of the connection's challenges
}

// methods returns the authentication methods to offer now. Basic is
// always offered, so users with hashed passwords can log in; over plain
// RTSP it sends the password in the clear, as RTSP clients expect.
func (s *Server) methods() []auth.VerifyMethod {
	if dc, ok := s.auth.(digestCapable); ok && !dc.DigestCapable() {
		return []auth.VerifyMethod{auth.VerifyMethodBasic}
	}
	// MD5 only: FFmpeg fails on a SHA-256 challenge (gortsplib's note).
	return []auth.VerifyMethod{auth.VerifyMethodBasic, auth.VerifyMethodDigestMD5}
}

func nonceOf(sc *gortsplib.ServerConn) string {
	cs, _ := sc.UserData().(*connState)
	if cs == nil {
		return ""
	}
	if cs.nonce == "" {
		cs.nonce, _ = auth.GenerateNonce()
	}
	return cs.nonce
}

// authorize checks that req may do action on feed. It returns the user,
// and, when the request is refused, the response and error to return:
//
//   - no credentials: 401 with a challenge, the normal first step;
//   - wrong user or password: 401, a rate-limited log line, and gortsplib
//     closes the connection (liberrors.ErrServerAuth);
//   - a Digest user without the right: 403 and a log line. (Basic cannot
//     tell this from a wrong password: Auth.Allow checks both.)
func (s *Server) authorize(sc *gortsplib.ServerConn, req *base.Request, feed, action string) (string, *base.Response, error) {
	remote := sc.NetConn().RemoteAddr().String()
	if s.auth == nil || s.auth.Allow(feed, action, "", "", remote) {
		return "", nil, nil
	}
	methods := s.methods()
	var a headers.Authorization
	if err := a.Unmarshal(req.Header["Authorization"]); err != nil || a.Username == "" {
		res := status(base.StatusUnauthorized, "")
		res.Header = base.Header{"WWW-Authenticate": auth.GenerateWWWAuthenticate(methods, realm, nonceOf(sc))}
		return "", res, nil
	}
	refuse := func(reason string) (string, *base.Response, error) {
		s.wrongLog.note("remote", remote, "feed", feed, "action", action, "user", a.Username, "reason", reason)
		return a.Username, status(base.StatusUnauthorized, ""), liberrors.ErrServerAuth{}
	}
	if a.Method == headers.AuthMethodBasic {
		if !s.auth.Allow(feed, action, a.Username, a.BasicPass, remote) {
			return refuse("wrong user or password, or no right to the feed (Basic)")
		}
		return a.Username, nil, nil
	}
	pass, known := s.auth.Password(a.Username)
	if !known || auth.Verify(req, a.Username, pass, methods, realm, nonceOf(sc)) != nil {
		return refuse("wrong user or password (Digest)")
	}
	if !s.auth.Allow(feed, action, a.Username, pass, remote) {
		s.forbiddenLog.note("remote", remote, "feed", feed, "action", action, "user", a.Username)
		return a.Username, status(base.StatusForbidden, "Forbidden: User May Not "+strings.ToUpper(action[:1])+action[1:]+" This Feed"), nil
	}
	return a.Username, nil, nil
}
