// Package viewer serves camfeed's built-in web viewer: a list of feeds
// with live tiles at /, one feed full page at /{feed}/, a bare player for
// iframes at /{feed}/embed, and what the player needs to show its own
// latency: GET /time (the server clock, for an NTP-style offset) and GET
// /{feed}/info (picture size, rate, and the camera's capture delay).
//
// Pages and scripts are embedded in the binary, so the viewer works on a
// LAN with no internet: no CDN, no fonts, no frameworks.
package viewer

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/camfeed/camfeed/internal/route"

	"github.com/camfeed/camfeed/internal/hub"
)

// Feeds finds a feed's hub by name and lists the feeds.
type Feeds interface {
	Hub(name string) (*hub.Hub, bool)
	Names() []string
}

// Protocol names, as the player and Options.Protocols spell them.
const (
	WebRTC = "webrtc"
	MSE    = "mse"
	HLS    = "hls"
)

// Options configure the viewer.
type Options struct {
	// NonBrowser, if set, answers GET / for clients that do not accept
	// HTML (the raw stream of the default feed, NonBrowserFeed).
	NonBrowser     http.Handler
	NonBrowserFeed string
	// AllowedOrigins may fetch /time and /{feed}/info from other pages
	// (CORS); "*" allows any. The same list should be given to the
	// outputs the player uses, so a dashboard can embed the player script.
	AllowedOrigins []string
	// Protocols are the outputs that are enabled, in the order the player
	// tries them. Empty means WebRTC, MSE, HLS.
	Protocols []string
	// Title is shown on the feed list; default "camfeed".
	Title string
}

// AssetPrefix is where the embedded scripts and styles are served.
const AssetPrefix = "/assets/"

//go:embed static
var staticFS embed.FS

//go:embed templates/*.html
var templateFS embed.FS

// Viewer serves the viewer pages.
type Viewer struct {
	feeds  Feeds
	opts   Options
	tmpl   *template.Template
	inline inline
}

// inline is what the feed and embed pages carry in themselves rather
// than fetch: the style and the scripts. A fresh page load fetched four
// assets (the page is no-cache, so every load did), and the player could
// only start after the last: 60–80 ms of the first picture on loopback
// in Chromium, more over Wi-Fi. The assets are still served under
// AssetPrefix for the feed list and for dashboards that embed the player.
type inline struct {
	CSS template.CSS
	JS  template.JS
}

func loadInline() inline {
	var in inline
	css, _ := staticFS.ReadFile("static/viewer.css")
	in.CSS = template.CSS(css)
	var js []byte
	for _, f := range []string{"timecode.js", "player.js", "page.js"} {
		b, _ := staticFS.ReadFile("static/" + f)
		js = append(append(js, b...), '\n')
	}
	in.JS = template.JS(js)
	return in
}

// New returns a viewer for feeds.
func New(feeds Feeds, opts Options) *Viewer {
	if len(opts.Protocols) == 0 {
		opts.Protocols = []string{WebRTC, MSE, HLS}
	}
	if opts.Title == "" {
		opts.Title = "camfeed"
	}
	return &Viewer{
		feeds:  feeds,
		opts:   opts,
		tmpl:   template.Must(template.ParseFS(templateFS, "templates/*.html")),
		inline: loadInline(),
	}
}

// Register adds the viewer's routes to mux. Every asset is registered by
// its literal path, which is more specific than any /{feed}/... pattern
// another output registers, so the mux never sees two equal patterns.
func (v *Viewer) Register(mux *route.Mux) {
	// GET / is the feed list for a browser and the default feed's stream
	// for a player: its access follows what it will serve.
	mux.HandleFunc("GET /{$}", route.ReadOf(v.indexFeed), v.serveIndex)
	mux.HandleFunc("GET /time", route.Public, v.serveTime)
	mux.HandleFunc("OPTIONS /time", route.Public, v.servePreflight)
	mux.HandleFunc("GET /{feed}/{$}", route.Read, v.serveFeed)
	mux.HandleFunc("GET /{feed}/embed", route.Read, v.serveEmbed)
	mux.HandleFunc("GET /{feed}/info", route.Read, v.serveInfo)
	mux.HandleFunc("OPTIONS /{feed}/info", route.Public, v.servePreflight)
	files, _ := fs.ReadDir(staticFS, "static")
	for _, f := range files {
		name := f.Name()
		body, _ := staticFS.ReadFile("static/" + name)
		ctype := mime.TypeByExtension(path.Ext(name))
		mux.HandleFunc("GET "+AssetPrefix+name, route.Public, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-cache")
			v.cors(w, r)
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
		})
	}
}

// cors adds Access-Control-Allow-Origin when the request's origin is
// allowed.
func (v *Viewer) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	for _, o := range v.opts.AllowedOrigins {
		if o == "*" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			return
		}
		if strings.EqualFold(o, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			return
		}
	}
}

func (v *Viewer) servePreflight(w http.ResponseWriter, r *http.Request) {
	v.cors(w, r)
	w.Header().Set("Access-Control-Allow-Methods", "GET, OPTIONS")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// serveTime answers with the server's wall clock in Unix microseconds.
// The page takes the round trip with the least delay among a few and
// assumes the answer was made half way through it (NTP's assumption), so
// the offset is good to half the round trip: a millisecond on a LAN.
func (v *Viewer) serveTime(w http.ResponseWriter, r *http.Request) {
	v.cors(w, r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(`{"now":` + strconv.FormatInt(time.Now().UnixMicro(), 10) + "}"))
}

// Info describes a feed for the player's overlay.
type Info struct {
	Name    string  `json:"name"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
	FPS     float64 `json:"fps"`
	Bitrate float64 `json:"bitrate"`
	Profile string  `json:"profile,omitempty"`
	// CaptureDelay is how long the newest unit took from capture to
	// camfeed (µs), when the source stamps capture times; the WebRTC
	// player adds it to server→screen to show camera→screen.
	CaptureDelay *int64   `json:"captureDelay,omitempty"`
	Live         bool     `json:"live"`
	Protocols    []string `json:"protocols"`
}

func (v *Viewer) info(name string, h *hub.Hub) Info {
	st := h.Stats()
	p := h.Params()
	in := Info{
		Name: name, Width: p.Info.Width, Height: p.Info.Height, FPS: st.FPS, Bitrate: st.Bitrate,
		Live: !st.LastUnit.IsZero() && time.Since(st.LastUnit) < 3*time.Second, Protocols: v.opts.Protocols,
	}
	if p.Gen > 0 {
		in.Profile = p.Info.ProfileName() + " " + p.Info.Level()
	}
	if _, newest := h.Latest(); newest != nil && !newest.Captured.IsZero() {
		d := newest.Received.Sub(newest.Captured).Microseconds()
		in.CaptureDelay = &d
	}
	return in
}

func (v *Viewer) serveInfo(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("feed")
	h, ok := v.feeds.Hub(name)
	if !ok {
		http.Error(w, "no such feed", http.StatusNotFound)
		return
	}
	v.cors(w, r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v.info(name, h))
}

type pageData struct {
	Title     string
	Feed      string
	Feeds     []Info
	Protocols string
	Assets    string
	Inline    inline
}

func (v *Viewer) render(w http.ResponseWriter, page string, d pageData) {
	d.Assets = AssetPrefix
	d.Inline = v.inline
	d.Protocols = strings.Join(v.opts.Protocols, ",")
	if d.Title == "" {
		d.Title = v.opts.Title
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if err := v.tmpl.ExecuteTemplate(w, page, d); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// player reports whether GET / is asked by a player rather than a browser.
func (v *Viewer) player(r *http.Request) bool {
	return v.opts.NonBrowser != nil && !strings.Contains(r.Header.Get("Accept"), "text/html")
}

// indexFeed is the feed GET / is about: the default feed for a player,
// none for the feed list.
func (v *Viewer) indexFeed(r *http.Request) string {
	if v.player(r) {
		return v.opts.NonBrowserFeed
	}
	return ""
}

func (v *Viewer) serveIndex(w http.ResponseWriter, r *http.Request) {
	if v.player(r) {
		v.opts.NonBrowser.ServeHTTP(w, r) // curl, ffplay: GET / is the stream, as in the seed
		return
	}
	var feeds []Info
	for _, name := range v.feeds.Names() {
		if h, ok := v.feeds.Hub(name); ok {
			feeds = append(feeds, v.info(name, h))
		}
	}
	v.render(w, "index.html", pageData{Feeds: feeds})
}

func (v *Viewer) serveFeed(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("feed")
	if _, ok := v.feeds.Hub(name); !ok {
		http.NotFound(w, r)
		return
	}
	v.render(w, "feed.html", pageData{Title: name + " · " + v.opts.Title, Feed: name})
}

func (v *Viewer) serveEmbed(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("feed")
	if _, ok := v.feeds.Hub(name); !ok {
		http.NotFound(w, r)
		return
	}
	v.render(w, "embed.html", pageData{Title: name, Feed: name})
}
