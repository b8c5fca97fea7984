package hls

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/limits"
)

// sessionParam is the query parameter that carries an HLS viewer's
// session id. HLS is a series of separate requests, so the door cannot
// count connections: the multivariant playlist opens a session and names
// it in every URI it hands out (media playlist, init, segments, parts),
// and the session holds its viewer slot until its player stops asking
// (sessionIdle). A client that asks for the media playlist directly, with
// no id, is counted as one session per address and feed.
const sessionParam = "session"

// sessionIdle ends a session whose player has made no request for this
// long. A live player reloads its playlist at least once a target
// duration (about a second here), and LL-HLS players hold a blocking
// request open almost all the time.
const sessionIdle = 10 * time.Second

type session struct {
	ds       *door.Session
	lastSeen time.Time
}

// sessions are the open HLS sessions, by id.
type sessions struct {
	door *door.Door

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(d *door.Door) *sessions { return &sessions{door: d, byID: map[string]*session{}} }

// open starts a session for a viewer of feed, or returns the door's
// refusal.
func (ss *sessions) open(r *http.Request, feed string) (string, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return id, ss.enter(r, feed, id)
}

// touch marks a request of a session; a session that is not open (its id
// came from a restarted camfeed, or it expired, or it is a client without
// an id) takes a new place in the door.
func (ss *sessions) touch(r *http.Request, feed string) (*session, error) {
	id := r.URL.Query().Get(sessionParam)
	if id == "" {
		id = "addr:" + limits.RemoteIP(r.RemoteAddr).String()
	}
	id = feed + "/" + id
	ss.mu.Lock()
	s := ss.byID[id]
	if s != nil {
		s.lastSeen = time.Now()
		ss.mu.Unlock()
		return s, nil
	}
	ss.mu.Unlock()
	if err := ss.enterKey(r, feed, id); err != nil {
		return nil, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.byID[id], nil
}

func (ss *sessions) enter(r *http.Request, feed, id string) error {
	return ss.enterKey(r, feed, feed+"/"+id)
}

func (ss *sessions) enterKey(r *http.Request, feed, key string) error {
	ds, err := ss.door.Admit(door.WhoHTTP(r, feed, door.HLS))
	if err != nil {
		return err
	}
	ss.mu.Lock()
	if old := ss.byID[key]; old != nil {
		// Two first requests of one session raced: keep one place.
		ss.mu.Unlock()
		ds.Leave("duplicate session")
		return nil
	}
	ss.byID[key] = &session{ds: ds, lastSeen: time.Now()}
	ss.mu.Unlock()
	return nil
}

// expire ends the sessions idle for longer than idle (all with idle 0).
func (ss *sessions) expire(idle time.Duration, reason string) {
	now := time.Now()
	var gone []*session
	ss.mu.Lock()
	for id, s := range ss.byID {
		if idle == 0 || now.Sub(s.lastSeen) > idle {
			gone = append(gone, s)
			delete(ss.byID, id)
		}
	}
	ss.mu.Unlock()
	for _, s := range gone {
		s.ds.Leave(reason)
	}
}

// count returns the open sessions.
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID)
}

// countingWriter counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	n int
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += n
	return n, err
}
