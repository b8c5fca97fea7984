package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/camfeed/camfeed/internal/app"
	"github.com/camfeed/camfeed/internal/config"
)

// TestDocsNameRealThings reads every .md file in the repository and checks
// each config key, flag, HTTP endpoint and subcommand it names against
// camfeed's own: the keys of config.Config (its yaml tags), the flags of
// the real flag set, the routes the app mounts, and the subcommands (and
// their flags) that run dispatches.
//
// What counts as naming one, in code (`spans` and fenced blocks):
//
//   - a key: a span that starts with a snake_case word (`clips_keep_for`,
//     `lag_budget: 300ms`) or a dotted path under feeds, users, tls or
//     limits (`feeds.NAME.anonymous_read`, `users[].name`); and every key
//     of a fenced yaml block whose first key is one of camfeed's (a block
//     of someone else's YAML, such as Home Assistant's, starts otherwise);
//   - a flag: --word after camfeed in command position (at the start, or
//     after sudo, a pipe, $ or =, with any path before it:
//     ~/go/bin/camfeed), or a span that starts with --;
//   - a subcommand: the first word after camfeed in command position;
//   - an environment variable: CAMFEED_ and capitals anywhere in code;
//     it must be a flag's, CAMFEED_CONFIG, or one a .go file reads (the
//     test suite's CAMFEED_REQUIRE_TOOLS and the like);
//   - an endpoint: a span or code line that starts with /path or
//     METHOD /path, and http:// URLs on localhost, 127.0.0.1, HOST,
//     pi.local and the like, on camfeed's port 8000 or none. File system
//     paths (/etc/..., /usr/..., ...) are not endpoints.
//
// Words that are not camfeed's (ffmpeg's and rpicam-vid's flags, H.264
// syntax elements, nginx directives) are in notOurs, each with why.
func TestDocsNameRealThings(t *testing.T) {
	root := filepath.Join("..", "..")
	truth := realNames(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != root || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d .md files", len(files))
	}
	var checked int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for _, p := range checkDoc(data, truth) {
			t.Errorf("%s:%d: %s", rel, p.line, p.msg)
		}
		checked++
	}
	t.Logf("%d files; %d keys, %d flags, %d routes, %d subcommands known", checked, len(truth.keys), len(truth.flags), len(truth.routes), len(truth.subs))
}

// notOurs are words in code that look like camfeed's but are someone
// else's.
var notOurs = map[string]string{
	// Home Assistant, nginx, the Pi's config.txt
	"rest_command":       "Home Assistant",
	"camera_auto_detect": "the Pi's config.txt",
	"limit_req":          "nginx",
	"limit_conn":         "nginx",
	// H.264 syntax elements (docs/TIMECODE.md, ARCHITECTURE.md)
	"nal_ref_idc":            "H.264",
	"frame_num":              "H.264",
	"rbsp_trailing_bits":     "H.264",
	"user_data_unregistered": "H.264",
	// fields of /api/v1/status, not config keys
	"rtsp_sessions":         "status JSON",
	"more_refused":          "status JSON",
	"gop_overruns":          "status JSON",
	"camera_frames_dropped": "status JSON",
	// the push targets' status fields (docs/SCALING.md)
	"frames_skipped": "status JSON",
	"lag_seconds":    "status JSON",
	"last_error":     "status JSON",
	"on_publish":     "nginx",
	// rpicam-vid's flags, where the docs say what camfeed runs
	"--low-latency":       "rpicam-vid",
	"--list-cameras":      "rpicam-hello",
	"--buffer-count":      "rpicam-vid",
	"--codec":             "rpicam-vid",
	"--save-pts":          "rpicam-vid",
	"--flush":             "rpicam-vid",
	"--libav-video-codec": "rpicam-vid",
	"h264_v4l2m2m":        "ffmpeg's V4L2 encoder",
	"start_x":             "the Pi's config.txt",
	"--disable-gpu":       "Chromium",
}

// names is what camfeed really has.
type names struct {
	keys   map[string]bool            // full paths, feeds.* and users.* for lists
	leaves map[string]bool            // the last part of each key
	flags  map[string]bool            // main flags, without dashes
	envs   map[string]bool            // CAMFEED_ variables
	subs   map[string]map[string]bool // subcommand → its flags
	routes []string                   // "GET /{feed}/clip.mp4"
}

func realNames(t *testing.T) names {
	n := names{keys: map[string]bool{}, leaves: map[string]bool{}, flags: map[string]bool{"help": true, "h": true, "version": true, "check-config": true},
		subs: map[string]map[string]bool{}}
	n.keys["feeds.*"] = true // a feed itself
	for _, k := range config.Keys() {
		n.keys[k] = true
		n.leaves[k[strings.LastIndexByte(k, '.')+1:]] = true
	}
	n.envs = goEnvs(t)
	for _, f := range config.Flags() {
		n.envs[f.Env] = true
		n.flags[f.Name] = true
		for _, a := range f.Aliases {
			n.flags[a] = true
		}
	}
	flagLine := regexp.MustCompile(`(?m)^\s+-{1,2}([a-z][a-z0-9-]*)`)
	for _, s := range subcommands() {
		n.subs[s.name] = map[string]bool{"help": true, "h": true}
		args := []string{s.name, "--help"}
		if s.name == "service" {
			args = []string{s.name, "install", "--help"}
		}
		if s.name == "help" || s.name == "version" {
			continue
		}
		_, out, errs := runCmd(args...)
		for _, m := range flagLine.FindAllStringSubmatch(out+errs, -1) {
			n.subs[s.name][m[1]] = true
		}
		if len(n.subs[s.name]) < 3 {
			t.Errorf("camfeed %s --help lists no flags:\n%s%s", s.name, out, errs)
		}
	}
	// Every route: an app with every optional route on.
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Debug, cfg.ClipsDir, cfg.RecordDir = true, filepath.Join(dir, "clips"), filepath.Join(dir, "rec")
	cfg.Feeds[config.DefaultFeed].Source, cfg.Feeds[config.DefaultFeed].Record = "test", true
	a, err := app.New(cfg, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range a.Routes() {
		// Routes mounted per feed name the feed: make it {feed}.
		n.routes = append(n.routes, strings.ReplaceAll(r.Pattern, "/"+config.DefaultFeed+"/", "/{feed}/"))
	}
	return n
}

// goEnvs are the CAMFEED_ variables that some .go file names in quotes.
func goEnvs(t *testing.T) map[string]bool {
	out := map[string]bool{}
	lit := regexp.MustCompile(`"(CAMFEED_[A-Z0-9_]+)"`)
	err := filepath.WalkDir(filepath.Join("..", ".."), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && d.Name() != ".." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range lit.FindAllSubmatch(data, -1) {
				out[string(m[1])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type problem struct {
	line int
	msg  string
}

var (
	fence      = regexp.MustCompile("^\\s*(```|~~~)\\s*([a-z]*)")
	span       = regexp.MustCompile("`([^`]+)`")
	keyStart   = regexp.MustCompile(`^([a-z][a-z0-9_]*(?:\[\])?(?:\.(?:[a-z0-9_*]+|[A-Z]+)(?:\[\])?)*)(?::|\s|=|$)`)
	yamlKey    = regexp.MustCompile(`^(\s*)(- )?([A-Za-z_][A-Za-z0-9_]*):(\s|$)`)
	command    = regexp.MustCompile(`(?:^|[|=]\s*|\bsudo\s+|\$\s+|\bgo run\s+)(?:[~.\w/-]*/)?camfeed((?:\s+[^|;&#]*)?)`)
	envVar     = regexp.MustCompile(`\bCAMFEED_[A-Z0-9_]*[A-Z0-9]\b`)
	endpoint   = regexp.MustCompile(`^(?:(GET|POST|DELETE|PUT|PATCH|OPTIONS|HEAD)\s+)?(/[^\s?#\[]*)`)
	ourURL     = regexp.MustCompile(`https?://(?:localhost|127\.0\.0\.1|\[::1\]|HOST|PI-ADDRESS|pi\.local|raspberrypi\.local)(?::8000)?(/[^\s?#"'<>)\]` + "`" + `]*)`)
	fsPrefixes = []string{"/base" /* libcamera's camera ids */, "/etc", "/usr", "/var", "/run", "/home", "/tmp", "/dev", "/proc", "/sys", "/boot", "/opt", "/lib", "/bin", "/sbin", "/root", "/srv", "/mnt", "/media"}
	parentKeys = []string{"feeds", "users", "tls", "limits"}
)

// checkDoc returns what a document names that camfeed does not have.
func checkDoc(data []byte, n names) []problem {
	var out []problem
	bad := func(line int, format string, a ...any) { out = append(out, problem{line, fmt.Sprintf(format, a...)}) }
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	inBlock, lang := false, ""
	var yamlPath []yamlLevel
	yamlOurs := unjudged
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			inBlock = !inBlock
			lang, yamlPath, yamlOurs = m[2], nil, unjudged
			continue
		}
		var segments []string
		if inBlock {
			if lang == "yaml" || lang == "yml" {
				yamlPath, yamlOurs = checkYAMLLine(line, lineNo, yamlPath, yamlOurs, n, bad)
			}
			segments = []string{line}
		} else {
			for _, m := range span.FindAllStringSubmatch(line, -1) {
				segments = append(segments, m[1])
				checkKey(m[1], lineNo, n, bad)
			}
			for _, m := range ourURL.FindAllStringSubmatch(line, -1) {
				checkEndpoint("", m[1], lineNo, n, bad)
			}
		}
		for _, s := range segments {
			for _, e := range envVar.FindAllString(s, -1) {
				if !n.envs[e] {
					bad(lineNo, "environment variable %s: camfeed reads no such variable%s", e, suggestion(e, n.envs))
				}
			}
			checkCommand(s, lineNo, n, bad)
			if inBlock {
				for _, m := range ourURL.FindAllStringSubmatch(s, -1) {
					checkEndpoint("", m[1], lineNo, n, bad)
				}
			}
			if m := endpoint.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
				checkEndpoint(m[1], m[2], lineNo, n, bad)
			}
		}
	}
	return out
}

// checkKey checks a span that starts with something shaped like a key.
func checkKey(s string, line int, n names, bad func(int, string, ...any)) {
	m := keyStart.FindStringSubmatch(s)
	if m == nil {
		return
	}
	tok := m[1]
	if _, ok := notOurs[tok]; ok || strings.HasPrefix(tok, "camfeed_") { // metrics: /metrics
		return
	}
	top, _, dotted := strings.Cut(tok, ".")
	top = strings.TrimSuffix(top, "[]")
	switch {
	case strings.HasPrefix(tok, "feeds[]"):
		// The status JSON's list of feeds; the config's feeds is a map.
	case dotted && slices.Contains(parentKeys, top):
		if p := normKey(tok); !n.keys[p] {
			bad(line, "config key %s: no such key%s", tok, suggestion(p, n.keys))
		}
	case !dotted && strings.Contains(tok, "_"):
		if !n.leaves[tok] {
			bad(line, "config key %s: no such key%s", tok, suggestion(tok, n.leaves))
		}
	}
}

// normKey writes a documented key path as config.Keys does:
// feeds.NAME.x → feeds.*.x, users[].name → users.name.
func normKey(p string) string {
	parts := strings.Split(strings.ReplaceAll(p, "[]", ""), ".")
	if parts[0] == "feeds" && len(parts) > 1 {
		parts[1] = "*"
	}
	return strings.Join(parts, ".")
}

// Whether a yaml block is camfeed's config, judged on its first key.
type judged int

const (
	unjudged judged = iota
	ours
	theirs
)

type yamlLevel struct {
	indent int
	key    string
}

// checkYAMLLine follows the keys of a yaml block; the block is checked
// when its first key is camfeed's.
func checkYAMLLine(line string, lineNo int, path []yamlLevel, whose judged, n names, bad func(int, string, ...any)) ([]yamlLevel, judged) {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	m := yamlKey.FindStringSubmatch(line)
	if m == nil || whose == theirs {
		return path, whose
	}
	indent := len(m[1])
	if m[2] != "" {
		indent += 2 // a list item's keys sit two deeper than its dash
	}
	for len(path) > 0 && path[len(path)-1].indent >= indent {
		path = path[:len(path)-1]
	}
	keys := make([]string, 0, len(path)+1)
	for _, l := range path {
		keys = append(keys, l.key)
	}
	keys = append(keys, m[3])
	full := normKey(strings.Join(keys, "."))
	if whose == unjudged {
		// A block is camfeed's when its first key is, or nearly is.
		whose = theirs
		if n.keys[full] || suggestion(full, n.keys) != "" {
			whose = ours
		}
		if whose == theirs {
			return path, whose // someone else's YAML
		}
	}
	if !n.keys[full] {
		if _, ok := notOurs[m[3]]; !ok {
			bad(lineNo, "config key %s: no such key%s", full, suggestion(full, n.keys))
		}
	}
	return append(path, yamlLevel{indent, m[3]}), whose
}

// checkCommand checks the subcommand and flags of each camfeed command in
// s, and the flags of a span that starts with --.
func checkCommand(s string, line int, n names, bad func(int, string, ...any)) {
	flagsIn := func(args []string, known map[string]bool, who string) {
		for _, a := range args {
			if !strings.HasPrefix(a, "--") || len(a) < 3 {
				continue
			}
			if _, ok := notOurs[a]; ok {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			name = strings.TrimRight(name, ".,:)")
			if !known[name] {
				bad(line, "flag --%s: %s has no such flag%s", name, who, strings.Replace(suggestion(name, known), "mean ", "mean --", 1))
			}
		}
	}
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "--") {
		flagsIn(strings.Fields(t), n.flags, "camfeed")
		return
	}
	for _, m := range command.FindAllStringSubmatch(s, -1) {
		args := strings.Fields(m[1])
		if len(args) == 0 {
			continue
		}
		first := args[0]
		if strings.HasPrefix(first, "-") {
			flagsIn(args, n.flags, "camfeed")
			continue
		}
		if !regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(first) {
			continue // camfeed.yaml, camfeed's, ...
		}
		flags, ok := n.subs[first]
		if !ok {
			subs := map[string]bool{}
			for k := range n.subs {
				subs[k] = true
			}
			bad(line, "subcommand camfeed %s: no such command%s", first, suggestion(first, subs))
			continue
		}
		flagsIn(args[1:], flags, "camfeed "+first)
	}
}

// checkEndpoint checks that some route serves method (any, when empty)
// and path. Placeholders ({feed}, FEED, NAME) match any segment.
func checkEndpoint(method, path string, line int, n names, bad func(int, string, ...any)) {
	path = strings.TrimRight(path, ".,:;")
	if path == "" || strings.Contains(path, "...") || strings.Contains(path, "{{") || strings.HasPrefix(path, "//") {
		return
	}
	for _, p := range fsPrefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return
		}
	}
	for _, r := range n.routes {
		if routeMatches(r, method, path) {
			return
		}
	}
	what := path
	if method != "" {
		what = method + " " + path
	}
	bad(line, "endpoint %s: no route serves it", what)
}

// routeMatches reports whether a mounted pattern ("GET /{feed}/clip.mp4",
// "GET /debug/pprof/") serves method and path.
func routeMatches(pattern, method, path string) bool {
	pm, pp, ok := strings.Cut(pattern, " ")
	if !ok {
		pm, pp = "", pattern
	}
	if method != "" && pm != "" && pm != method && (method != "HEAD" || pm != "GET") {
		return false
	}
	ps := strings.Split(strings.TrimPrefix(pp, "/"), "/")
	ds := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, seg := range ps {
		last := i == len(ps)-1
		if last && seg == "" && !strings.HasSuffix(pp, "{$}") {
			return len(ds) >= len(ps) // a subtree: /debug/pprof/
		}
		if seg == "{$}" {
			return len(ds) == i+1 && ds[i] == ""
		}
		if i >= len(ds) {
			return false
		}
		d := ds[i]
		placeholder := strings.HasPrefix(d, "{") || (d != "" && strings.ToUpper(d) == d && strings.Trim(d, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "")
		if strings.HasPrefix(seg, "{") {
			if d == "" && !strings.HasSuffix(seg, "...}") {
				return false
			}
			if strings.HasSuffix(seg, "...}") {
				return true
			}
			continue
		}
		if seg != d && !placeholder {
			return false
		}
	}
	return len(ds) == len(ps)
}

// suggestion is "; did you mean X?" when a known name is close.
func suggestion(word string, known map[string]bool) string {
	cands := make([]string, 0, len(known))
	for k := range known {
		cands = append(cands, k)
	}
	slices.Sort(cands)
	if s := config.Suggest(word, cands); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
}

// TestDocsCheckerCatches: the checker finds each kind of mistake, says
// where, and leaves alone what is not camfeed's.
func TestDocsCheckerCatches(t *testing.T) {
	doc := "# Doc\n" +
		"Set `clips_max_concurent: 3` and `lag_budget: 1s`, or `feeds.NAME.sauce`.\n" + // 2
		"Run `camfeed --widht 640` or `camfeed servce install`, `camfeed cameras --jsn`.\n" + // 3
		"Or `--lag-budget 300ms` and `--low-latency` (rpicam-vid's), `CAMFEED_LAG_BUGDET=1s`.\n" + // 4
		"GET `/api/v1/feeds/{feed}/restart`, `/cam/clip.mp4?seconds=30`, `/etc/camfeed/camfeed.yaml`.\n" + // 5
		"Open http://localhost:8000/cam/nothing or http://HOST:8000/cam/ or https://example.com/x.\n" + // 6
		"```yaml\n" + // 7
		"webrtc_host: [1.2.3.4]\n" + // 8
		"feeds:\n" + // 9
		"  door:\n" + // 10
		"    source: test\n" + // 11
		"    widht: 640\n" + // 12
		"users:\n" + // 13
		"  - name: alice\n" + // 14
		"    permisions: [read]\n" + // 15
		"```\n" +
		"```yaml\n" + // 17
		"rest_command:\n" + // 18
		"  url: x\n" + // 19
		"```\n" +
		"```sh\n" + // 21
		"rpicam-vid --inline -o - | camfeed --source stdin --nonsense\n" + // 22
		"sudo ~/go/bin/camfeed service install --dry-run\n" + // 23
		"POST /api/v1/feeds/cam/clips?seconds=20\n" + // 24
		"DELETE /{feed}/clip.mp4\n" + // 25
		"```\n"
	var got []string
	for _, p := range checkDoc([]byte(doc), realNames(t)) {
		got = append(got, fmt.Sprintf("%d: %s", p.line, p.msg))
	}
	want := []string{
		"2: config key clips_max_concurent: no such key; did you mean clips_max_concurrent?",
		"2: config key feeds.NAME.sauce: no such key; did you mean feeds.*.source?",
		"3: flag --widht: camfeed has no such flag; did you mean --width?",
		"3: subcommand camfeed servce: no such command; did you mean service?",
		"3: flag --jsn: camfeed cameras has no such flag; did you mean --json?",
		"4: environment variable CAMFEED_LAG_BUGDET: camfeed reads no such variable; did you mean CAMFEED_LAG_BUDGET?",
		"5: endpoint /api/v1/feeds/{feed}/restart: no route serves it",
		"6: endpoint /cam/nothing: no route serves it",
		"8: config key webrtc_host: no such key; did you mean webrtc_hosts?",
		"12: config key feeds.*.widht: no such key; did you mean feeds.*.width?",
		"15: config key users.permisions: no such key; did you mean users.permissions?",
		"22: flag --nonsense: camfeed has no such flag",
		"25: endpoint DELETE /{feed}/clip.mp4: no route serves it",
	}
	if !slices.Equal(got, want) {
		t.Errorf("found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
