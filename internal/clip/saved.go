package clip

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	amp4 "github.com/abema/go-mp4"
)

// Saved clips live in Dir/FEED/NAME.mp4. A clip is written to NAME.mp4.part
// and renamed once complete and synced, so a crash or power cut never
// leaves a broken clip under a listed name; New deletes the .part files.
const partExt = ".part"

// nameRE matches the names of saved clips: FEED-20060102T150405.000Z.mp4,
// with -2, -3... when two clips start in the same millisecond.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*-([0-9]{8}T[0-9]{6}\.[0-9]{3}Z)(-[0-9]+)?\.mp4$`)

// feedRE matches feed names (internal/config's rule), so a path parameter
// never walks out of Dir.
var feedRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

const nameTime = "20060102T150405.000Z"

// SavedClip describes a clip on disk, as the API lists it.
type SavedClip struct {
	Name    string    `json:"name"`
	URL     string    `json:"url"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	Bytes   int64     `json:"bytes"`
	// Saved is when the file was completed.
	Saved time.Time `json:"saved"`
}

// saveResponse answers POST .../clips.
type saveResponse struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Ready is false when the clip waits for after= seconds: it is listed
	// once complete.
	Ready     bool      `json:"ready"`
	ReadyAt   time.Time `json:"ready_at,omitzero"`
	Seconds   float64   `json:"seconds,omitempty"`
	Truncated bool      `json:"truncated"`
}

// handleSave serves POST /api/v1/feeds/{feed}/clips?seconds=N[&after=M].
// Without after= it saves at once and answers 201. With after= it answers
// 202 at once with the name, and the clip appears when its last second has
// come: an automation that fires on a doorbell must not wait for it.
func (s *Server) handleSave(w http.ResponseWriter, r *http.Request) {
	if !s.orig.Allow(w, r) {
		return
	}
	feed := r.PathValue("feed")
	h, ok := s.feeds.Hub(feed)
	if !ok || !feedRE.MatchString(feed) {
		http.NotFound(w, r)
		return
	}
	if s.cfg.Dir == "" {
		http.Error(w, "saving clips is off: set the clips directory in the config", http.StatusNotImplemented)
		return
	}
	req, err := s.parseRequest(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	dir := filepath.Join(s.cfg.Dir, feed)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.log.Error("clip: save", "feed", feed, "err", err)
		http.Error(w, "cannot create the clips directory", http.StatusInternalServerError)
		return
	}
	if free, err := s.free(dir); err == nil && free < s.cfg.MinFree {
		http.Error(w, fmt.Sprintf("not enough free space to save a clip: %d MiB free, %d MiB kept free", free>>20, s.cfg.MinFree>>20), http.StatusInsufficientStorage)
		return
	}
	release, err := s.slots.save()
	if err != nil {
		httpError(w, err)
		return
	}
	p, err := start(h, req, nil)
	if err != nil {
		release()
		httpError(w, err)
		return
	}
	name, f, err := s.create(dir, feed, p.from)
	if err != nil {
		p.close()
		release()
		var full *fullError
		if errors.As(err, &full) {
			s.log.Warn("clip: save refused", "feed", feed, "err", err)
			w.Header().Set("Retry-After", strconv.Itoa(full.retry))
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		s.log.Error("clip: save", "feed", feed, "err", err)
		http.Error(w, "cannot create the clip file", http.StatusInternalServerError)
		return
	}
	resp := saveResponse{Name: name, URL: savedURL(feed, name)}
	if req.after > 0 {
		resp.ReadyAt = p.to
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer release()
			if _, err := s.write(s.ctx, p, dir, name, f); err != nil {
				s.log.Warn("clip: save", "feed", feed, "clip", name, "err", err)
			}
		}()
		writeJSON(w, http.StatusAccepted, resp)
		return
	}
	defer release()
	c, err := s.write(r.Context(), p, dir, name, f)
	if err != nil {
		s.log.Warn("clip: save", "feed", feed, "clip", name, "err", err)
		httpError(w, err)
		return
	}
	resp.Ready, resp.Seconds, resp.Truncated = true, c.Duration.Seconds(), c.Truncated
	w.Header().Set("Location", resp.URL)
	writeJSON(w, http.StatusCreated, resp)
}

func savedURL(feed, name string) string { return "/api/v1/feeds/" + feed + "/clips/" + name }

// fullError refuses a save that would delete a clip saved less than
// KeepFor ago to make room; retry is in seconds.
type fullError struct {
	feed       string
	max, retry int
	age, keep  time.Duration
}

func (e *fullError) Error() string {
	return fmt.Sprintf("clip: feed %s already keeps %d saved clips, and making room for this one would delete a clip saved only %s ago; "+
		"a new clip never pushes out one saved within %s, so that a burst of saves cannot wipe an event: retry in %d s, delete clips, or raise clips_max_saved",
		e.feed, e.max, e.age.Round(time.Second), e.keep, e.retry)
}

// room checks that saving one more clip in dir will not, once it is
// complete and the oldest are pruned to MaxSaved, delete a clip younger
// than KeepFor. Clips still being written (part files) count, as they
// will be listed. Called with saveMu held.
func (s *Server) room(dir, feed string) error {
	if s.cfg.KeepFor < 0 {
		return nil
	}
	names := savedNames(dir)
	parts, _ := filepath.Glob(filepath.Join(dir, "*.mp4"+partExt))
	over := len(names) + len(parts) + 1 - s.cfg.MaxSaved // clips the new one will push out
	if over <= 0 {
		return nil
	}
	if over > len(names) {
		// Every listed clip would go, and more: the part files are all
		// younger than KeepFor in practice.
		return &fullError{feed: feed, max: s.cfg.MaxSaved, keep: s.cfg.KeepFor, retry: int(s.cfg.KeepFor / time.Second)}
	}
	st, err := os.Stat(filepath.Join(dir, names[over-1])) // the newest that would go
	if err != nil {
		return nil // deleted meanwhile
	}
	if age := time.Since(st.ModTime()); age < s.cfg.KeepFor {
		retry := int((s.cfg.KeepFor - age + time.Second - 1) / time.Second)
		return &fullError{feed: feed, max: s.cfg.MaxSaved, age: age, keep: s.cfg.KeepFor, retry: max(retry, 1)}
	}
	return nil
}

// create makes NAME.mp4.part for a clip starting at t, with a name that no
// clip or part file has yet, if there is room (see room).
func (s *Server) create(dir, feed string, t time.Time) (string, *os.File, error) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if err := s.room(dir, feed); err != nil {
		return "", nil, err
	}
	base := feed + "-" + t.UTC().Format(nameTime)
	for i := 1; i < 100; i++ {
		name := base + ".mp4"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.mp4", base, i)
		}
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, name+partExt), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, f, err
	}
	return "", nil, errors.New("clip: too many clips with the same start")
}

// write finishes p into f, syncs it, renames it to name and prunes the
// feed's oldest clips. On any failure the part file is removed.
func (s *Server) write(ctx context.Context, p *pending, dir, name string, f *os.File) (c *Clip, err error) {
	part := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(part)
		}
	}()
	c, err = p.finish(ctx, s.grace)
	if err != nil {
		return nil, err
	}
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(f)
	err = c.WriteMP4(bw, nil)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufPool.Put(bw)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(part, filepath.Join(dir, name))
	}
	if err != nil {
		return nil, err
	}
	syncDir(dir)
	s.log.Info("clip: saved", "clip", name, "seconds", c.Duration.Seconds(), "truncated", c.Truncated)
	s.prune(dir)
	return c, nil
}

// prune deletes the oldest clips beyond MaxSaved.
func (s *Server) prune(dir string) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	names := savedNames(dir)
	for len(names) > s.cfg.MaxSaved {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
			s.log.Warn("clip: prune", "err", err)
		}
		names = names[1:]
	}
}

// savedNames lists a feed's clips, oldest first (names sort by time).
func savedNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && nameRE.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		ma, mb := nameRE.FindStringSubmatch(a), nameRE.FindStringSubmatch(b)
		if c := cmp.Compare(ma[1], mb[1]); c != 0 {
			return c
		}
		return cmp.Compare(suffix(ma[2]), suffix(mb[2]))
	})
	return names
}

// suffix is the number of a "-N" name suffix, 1 for none.
func suffix(s string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "-"))
	if err != nil {
		return 1
	}
	return n
}

// removeParts deletes part files left by a crash.
func (s *Server) removeParts() {
	parts, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*", "*.mp4"+partExt))
	for _, p := range parts {
		if err := os.Remove(p); err == nil {
			s.log.Info("clip: removed an unfinished clip", "file", p)
		}
	}
}

// handleList serves GET /api/v1/feeds/{feed}/clips, newest first.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	feed := r.PathValue("feed")
	if _, ok := s.feeds.Hub(feed); !ok || !feedRE.MatchString(feed) {
		http.NotFound(w, r)
		return
	}
	list := []SavedClip{}
	if s.cfg.Dir != "" {
		dir := filepath.Join(s.cfg.Dir, feed)
		names := savedNames(dir)
		for i := len(names) - 1; i >= 0; i-- {
			c, err := describe(dir, names[i])
			if err != nil {
				continue // deleted meanwhile
			}
			c.URL = savedURL(feed, c.Name)
			list = append(list, c)
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Feed  string      `json:"feed"`
		Clips []SavedClip `json:"clips"`
	}{feed, list})
}

// describe reads a saved clip's start (from its name) and duration (from
// its movie header).
func describe(dir, name string) (SavedClip, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return SavedClip{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SavedClip{}, err
	}
	c := SavedClip{Name: name, Bytes: st.Size(), Saved: st.ModTime().UTC()}
	if m := nameRE.FindStringSubmatch(name); m != nil {
		c.Start, _ = time.Parse(nameTime, m[1])
	}
	boxes, err := amp4.ExtractBoxWithPayload(f, nil, amp4.BoxPath{amp4.BoxTypeMoov(), amp4.BoxTypeMvhd()})
	if err == nil && len(boxes) == 1 {
		if mvhd, ok := boxes[0].Payload.(*amp4.Mvhd); ok && mvhd.Timescale > 0 {
			c.Seconds = float64(mvhd.GetDuration()) / float64(mvhd.Timescale)
		}
	}
	return c, nil
}

// handleGetSaved serves GET /api/v1/feeds/{feed}/clips/{name}, with Range.
func (s *Server) handleGetSaved(w http.ResponseWriter, r *http.Request) {
	path, ok := s.savedPath(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filepath.Base(path)+`"`)
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// handleDelete serves DELETE /api/v1/feeds/{feed}/clips/{name}.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	if !s.orig.Allow(w, r) {
		return
	}
	path, ok := s.savedPath(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.saveMu.Lock()
	err := os.Remove(path)
	s.saveMu.Unlock()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.NotFound(w, r)
	case err != nil:
		s.log.Error("clip: delete", "err", err)
		http.Error(w, "cannot delete the clip", http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// savedPath returns the file a request names, if the name is valid.
func (s *Server) savedPath(r *http.Request) (string, bool) {
	feed, name := r.PathValue("feed"), r.PathValue("name")
	if _, ok := s.feeds.Hub(feed); !ok || s.cfg.Dir == "" || !feedRE.MatchString(feed) || !nameRE.MatchString(name) {
		return "", false
	}
	return filepath.Join(s.cfg.Dir, feed, name), true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// syncDir makes a rename durable (fsync of the directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
