package clip

import (
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/camfeed/camfeed/internal/auth"
)

// slots bounds the clips being made at once. A download holds a slot
// while its clip is gathered and sent, which for after= is up to a
// minute: so one reader must not be able to take them all. Downloads are
// counted against a global cap, a cap per feed and a cap per user (an
// anonymous client is known by its address). Saves, the event triggers
// that must not be lost, have their own slots, which downloads never
// take.
type slots struct {
	maxDownloads, maxPerFeed, maxPerUser, maxSaving int

	mu        sync.Mutex
	downloads int
	saving    int
	perFeed   map[string]int
	perUser   map[string]int
}

func newSlots(c Config) *slots {
	return &slots{
		maxDownloads: c.MaxConcurrent, maxPerFeed: c.MaxPerFeed, maxPerUser: c.MaxPerUser, maxSaving: c.MaxSaving,
		perFeed: map[string]int{}, perUser: map[string]int{},
	}
}

// busyError is a refused slot: which limit, and the status to answer.
type busyError struct {
	msg  string
	code int
}

func (e *busyError) Error() string { return e.msg }

// download takes a download slot of feed for who, or says which limit is
// reached.
func (s *slots) download(feed, who string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.perUser[who] >= s.maxPerUser:
		return nil, &busyError{fmt.Sprintf("clip: you already have %d clips in progress, the most one user may; retry when one is done", s.maxPerUser), http.StatusTooManyRequests}
	case s.perFeed[feed] >= s.maxPerFeed:
		return nil, &busyError{fmt.Sprintf("clip: %d clips of feed %s are already in progress, the most for one feed; retry in a second", s.maxPerFeed, feed), http.StatusServiceUnavailable}
	case s.downloads >= s.maxDownloads:
		return nil, errBusy
	}
	s.downloads++
	s.perFeed[feed]++
	s.perUser[who]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.downloads--
			if s.perFeed[feed]--; s.perFeed[feed] <= 0 {
				delete(s.perFeed, feed)
			}
			if s.perUser[who]--; s.perUser[who] <= 0 {
				delete(s.perUser, who)
			}
		})
	}, nil
}

// save takes a save slot.
func (s *slots) save() (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saving >= s.maxSaving {
		return nil, &busyError{fmt.Sprintf("clip: %d clips are already being saved, the most at once; retry in a second", s.maxSaving), http.StatusServiceUnavailable}
	}
	s.saving++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.saving--
			s.mu.Unlock()
		})
	}, nil
}

// who names the client a download is counted against: the user it
// authenticated as, or else its address.
func who(r *http.Request) string {
	if u := auth.UserFrom(r.Context()); u != "" {
		return "user " + u
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "address " + host
}
