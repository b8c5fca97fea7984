package auth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

var (
	hashOnce sync.Once
	aliceH   string // bcrypt of "alice-pw" at the minimum cost, to keep tests fast
)

func init() {
	h, _ := bcrypt.GenerateFromPassword([]byte("dummy"), bcrypt.MinCost)
	dummyHash = string(h) // the race detector makes cost 10 take seconds
}

// cheapArgon2id hashes with tiny parameters; verification reads them from
// the hash, so it exercises the same code as a real one.
func cheapArgon2id(pw string) string {
	salt := []byte("0123456789abcdef")
	k := argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)
	return "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(k)
}

func aliceHash(t testing.TB) string {
	hashOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		aliceH = string(h)
	})
	return aliceH
}

const bobToken = "bob-token-0123456789abcdef"

// lanConfig: alice is admin; bob may read only "door" with a token; carol
// publishes "yard" with a plain password; "door" is anonymous.
func lanConfig(t testing.TB) Config {
	argon := cheapArgon2id("dave-pw")
	return Config{
		Users: []User{
			{Name: "alice", Password: aliceHash(t), Permissions: []string{"admin"}},
			{Name: "bob", Tokens: []string{bobToken}, Permissions: []string{"read:door"}},
			{Name: "carol", Password: "plain:carol-pw", Permissions: []string{"publish:yard", "read:yard"}},
			{Name: "dave", Password: argon, Permissions: []string{"read"}},
		},
		AnonymousRead: map[string]bool{"door": true},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func TestCheck(t *testing.T) {
	open, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	lan, err := New(lanConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	anonAll := lanConfig(t)
	anonAll.AnonymousRead = map[string]bool{"*": true, "yard": false}
	lanAnon, err := New(anonAll)
	if err != nil {
		t.Fatal(err)
	}
	none := Credentials{}
	alice := Credentials{User: "alice", Password: "alice-pw"}
	tests := []struct {
		name   string
		a      *Authenticator
		feed   string
		action string
		c      Credentials
		user   string
		err    error
	}{
		{"no users: anonymous read", open, "cam", Read, none, "", nil},
		{"no users: anonymous status page", open, "", Read, none, "", nil},
		{"no users: anonymous publish", open, "cam", Publish, none, "", nil},
		{"no users: admin never", open, "", Admin, none, "", ErrNoAdmin},
		{"no users: admin with made-up credentials", open, "", Admin, alice, "", ErrUnauthenticated},

		{"users: anonymous read refused", lan, "yard", Read, none, "", ErrUnauthenticated},
		{"users: anonymous_read feed", lan, "door", Read, none, "", nil},
		{"users: anonymous status page refused", lan, "", Read, none, "", ErrUnauthenticated},
		{"users: anonymous publish refused", lan, "door", Publish, none, "", ErrUnauthenticated},
		{"users: anonymous admin refused", lan, "", Admin, none, "", ErrUnauthenticated},
		{"admin user may do all", lan, "", Admin, alice, "alice", nil},
		{"admin reads", lan, "yard", Read, alice, "alice", nil},
		{"admin publishes", lan, "yard", Publish, alice, "alice", nil},
		{"wrong password", lan, "yard", Read, Credentials{User: "alice", Password: "nope"}, "", ErrUnauthenticated},
		{"wrong password on an anonymous feed", lan, "door", Read, Credentials{User: "alice", Password: "nope"}, "", ErrUnauthenticated},
		{"unknown user", lan, "yard", Read, Credentials{User: "mallory", Password: "x"}, "", ErrUnauthenticated},
		{"token reads its feed", lan, "door", Read, Credentials{Token: bobToken}, "bob", nil},
		{"token, other feed", lan, "yard", Read, Credentials{Token: bobToken}, "bob", ErrForbidden},
		{"wrong token", lan, "door", Read, Credentials{Token: bobToken + "x"}, "", ErrUnauthenticated},
		{"token user is not admin", lan, "", Admin, Credentials{Token: bobToken}, "bob", ErrForbidden},
		{"feed read is not status read", lan, "", Read, Credentials{Token: bobToken}, "bob", ErrForbidden},
		{"plain password publishes", lan, "yard", Publish, Credentials{User: "carol", Password: "carol-pw"}, "carol", nil},
		{"plain password, other feed", lan, "door", Publish, Credentials{User: "carol", Password: "carol-pw"}, "carol", ErrForbidden},
		{"plain password wrong", lan, "yard", Publish, Credentials{User: "carol", Password: "carol-pW"}, "", ErrUnauthenticated},
		{"argon2id reads all", lan, "yard", Read, Credentials{User: "dave", Password: "dave-pw"}, "dave", nil},
		{"argon2id status page", lan, "", Read, Credentials{User: "dave", Password: "dave-pw"}, "dave", nil},
		{"argon2id wrong", lan, "yard", Read, Credentials{User: "dave", Password: "dave-pW"}, "", ErrUnauthenticated},
		{"argon2id cannot publish", lan, "yard", Publish, Credentials{User: "dave", Password: "dave-pw"}, "dave", ErrForbidden},
		{"anonymous * reads status", lanAnon, "", Read, none, "", nil},
		{"anonymous * reads a feed", lanAnon, "door", Read, none, "", nil},
		{"anonymous * but not this feed", lanAnon, "yard", Read, none, "", ErrUnauthenticated},
		{"anonymous * never admin", lanAnon, "", Admin, none, "", ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second time through the verification cache
				user, err := tt.a.Check(tt.feed, tt.action, tt.c)
				if user != tt.user || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
					t.Fatalf("got (%q, %v), want (%q, %v)", user, err, tt.user, tt.err)
				}
			}
			if got := tt.a.Allow(tt.feed, tt.action, tt.c.User, tt.c.Password); tt.c.Token == "" && got != (tt.err == nil) {
				t.Errorf("Allow = %v", got)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Users: []User{{Password: "plain:x", Permissions: []string{"read"}}}}, "users[0]: name is empty"},
		{Config{Users: []User{{Name: "a", Permissions: []string{"read"}}}}, "users[0] (a): give a password (camfeed passwd) or tokens"},
		{Config{Users: []User{{Name: "a", Password: "hunter2", Permissions: []string{"read"}}}},
			"users[0] (a): password: not a bcrypt or argon2id hash; make one with camfeed passwd, or write plain:SECRET"},
		{Config{Users: []User{{Name: "a", Password: "plain:x"}}}, "users[0] (a): permissions: give at least one of read, publish, admin (or read:FEED, publish:FEED)"},
		{Config{Users: []User{{Name: "a", Password: "plain:x", Permissions: []string{"write"}}}},
			`users[0] (a): permissions: "write" is not read, publish, admin, read:FEED or publish:FEED`},
		{Config{Users: []User{{Name: "a", Password: "plain:x", Permissions: []string{"admin:cam"}}}},
			`users[0] (a): permissions: "admin:cam" is not read, publish, admin, read:FEED or publish:FEED`},
		{Config{Users: []User{{Name: "a", Tokens: []string{"short"}, Permissions: []string{"read"}}}},
			"users[0] (a): tokens[0]: a token needs at least 16 characters; camfeed passwd --token makes one"},
		{Config{Users: []User{{Name: "a", Tokens: []string{"sha256:abc"}, Permissions: []string{"read"}}}},
			"users[0] (a): tokens[0]: sha256: needs 64 hex digits"},
		{Config{Users: []User{{Name: "a", Password: "plain:x", Permissions: []string{"read"}}, {Name: "a", Password: "plain:y", Permissions: []string{"read"}}}},
			`users[1] (a): name: "a" appears twice`},
		{Config{TCPAllow: []string{"192.168.1.0/33"}}, `tcp_allow: "192.168.1.0/33" is not an address or CIDR prefix such as 192.168.1.0/24`},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("got %v\nwant %s", err, tt.want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel() // bcrypt at cost 10 under -race takes seconds
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2a$10$") {
		t.Errorf("hash %q", h)
	}
	a, err := New(Config{Users: []User{{Name: "u", Password: h, Permissions: []string{"read"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allow("cam", Read, "u", "correct horse") {
		t.Error("the hash does not verify its password")
	}
	h, err = HashPasswordArgon2id("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := parseSecret(h); err != nil || !s.verify("correct horse") {
		t.Errorf("argon2id hash %q: %v", h, err)
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password accepted")
	}
	if _, err := HashPassword(strings.Repeat("x", 73)); err == nil {
		t.Error("a password bcrypt would cut accepted")
	}
	tok, conf := NewToken()
	a, err = New(Config{Users: []User{{Name: "u", Tokens: []string{conf}, Permissions: []string{"read"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check("cam", Read, Credentials{Token: tok}); err != nil {
		t.Errorf("a new token does not match its configured form: %v", err)
	}
}

func TestPasswordForDigest(t *testing.T) {
	a, _ := New(lanConfig(t))
	if pw, ok := a.Password("carol"); !ok || pw != "carol-pw" {
		t.Errorf("carol: %q %v", pw, ok)
	}
	if _, ok := a.Password("alice"); ok {
		t.Error("a hashed password has no plain text")
	}
	if a.DigestCapable() {
		t.Error("digest with hashed passwords")
	}
	if err := a.CheckUser("yard", Publish, "carol"); err != nil {
		t.Error(err)
	}
	if err := a.CheckUser("door", Publish, "carol"); !errors.Is(err, ErrForbidden) {
		t.Error(err)
	}
}

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	cfg := lanConfig(t)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	feedOf := func(r *http.Request) string { return r.PathValue("feed") }
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+UserFrom(r.Context())) })
	mux.Handle("/{feed}/stream.h264", a.Middleware(Read, feedOf)(ok))
	mux.Handle("/api/restart", a.Middleware(Admin, nil)(ok))
	mux.Handle("/metrics", a.Middleware(Read, nil)(ok))
	mux.Handle("/{feed}/whep", a.Middleware(Read, feedOf)(ok))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name, method, path string
		set                func(*http.Request)
		code               int
		body               string
	}{
		{"anonymous, protected feed", "GET", "/yard/stream.h264", nil, 401, ""},
		{"wrong password", "GET", "/yard/stream.h264", func(r *http.Request) { r.SetBasicAuth("alice", "wrong") }, 401, ""},
		{"right password", "GET", "/yard/stream.h264", func(r *http.Request) { r.SetBasicAuth("alice", "alice-pw") }, 200, "ok alice"},
		{"anonymous feed", "GET", "/door/stream.h264", nil, 200, "ok "},
		{"bearer token", "GET", "/door/stream.h264", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+bobToken) }, 200, "ok bob"},
		{"token in the URL", "GET", "/door/stream.h264?access_token=" + bobToken, nil, 200, "ok bob"},
		{"token, not permitted", "GET", "/yard/stream.h264", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+bobToken) }, 403, ""},
		{"admin anonymous", "POST", "/api/restart", nil, 401, ""},
		{"admin as reader", "POST", "/api/restart", func(r *http.Request) { r.SetBasicAuth("dave", "dave-pw") }, 403, ""},
		{"admin as admin", "POST", "/api/restart", func(r *http.Request) { r.SetBasicAuth("alice", "alice-pw") }, 200, "ok alice"},
		{"metrics anonymous", "GET", "/metrics", nil, 401, ""},
		{"metrics as reader", "GET", "/metrics", func(r *http.Request) { r.SetBasicAuth("dave", "dave-pw") }, 200, "ok dave"},
		{"CORS preflight passes", "OPTIONS", "/yard/whep", func(r *http.Request) { r.Header.Set("Access-Control-Request-Method", "POST") }, 200, "ok "},
		{"plain OPTIONS does not", "OPTIONS", "/yard/whep", nil, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if tt.set != nil {
				tt.set(req)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.code, body)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if tt.code == 401 {
				ch := resp.Header.Values("WWW-Authenticate")
				if len(ch) != 2 || ch[0] != `Basic realm="camfeed", charset="UTF-8"` || ch[1] != `Bearer realm="camfeed"` {
					t.Errorf("challenges %q", ch)
				}
			}
		})
	}
	if n := strings.Count(logs.String(), "auth: refused"); n < 1 || n > 3 {
		t.Errorf("%d refusal lines logged; want them limited to about one a second:\n%s", n, logs.String())
	}
	if u, f := a.Refused(); u != 5 || f != 2 {
		t.Errorf("refused counts %d, %d", u, f)
	}
}

func TestAdminWithoutUsers(t *testing.T) {
	a, _ := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h := a.Middleware(Admin, nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("admin handler ran") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/reload", nil))
	if w.Code != 403 || !strings.Contains(w.Body.String(), "add one under users:") {
		t.Errorf("%d %q", w.Code, w.Body.String())
	}
}

func TestAllowIP(t *testing.T) {
	list, err := ParsePrefixes([]string{"192.168.1.0/24", "10.0.0.7", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"192.168.1.20:5000":        true,
		"192.168.1.20":             true,
		"[::ffff:192.168.1.20]:80": true, // IPv4 on a dual-stack socket
		"192.168.2.1:5000":         false,
		"10.0.0.7:1":               true,
		"10.0.0.8:1":               false,
		"[fd12::1]:9":              true,
		"[2001:db8::1]:9":          false,
		"garbage":                  false,
	} {
		if got := AllowIP(addr, list); got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
	if AllowIP("127.0.0.1:1", nil) {
		t.Error("an empty list allows nobody")
	}
}

func TestAllowTCP(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open, _ := New(Config{Logger: quiet})
	users := lanConfig(t)
	withUsers, _ := New(users)
	users.TCPAllow = []string{"192.168.1.0/24"}
	listed, _ := New(users)
	tests := []struct {
		a      *Authenticator
		remote string
		feed   string
		want   bool
	}{
		{open, "192.168.1.9:4000", "cam", true},
		{withUsers, "192.168.1.9:4000", "yard", false},
		{withUsers, "127.0.0.1:4000", "yard", true},
		{withUsers, "192.168.1.9:4000", "door", true}, // anonymous_read
		{listed, "192.168.1.9:4000", "yard", true},
		{listed, "192.168.7.9:4000", "door", false}, // the list wins
	}
	for i, tt := range tests {
		if got := tt.a.AllowTCP(tcp(tt.remote), tt.feed); got != tt.want {
			t.Errorf("%d: %s %s: %v, want %v", i, tt.remote, tt.feed, got, tt.want)
		}
	}
}

func TestSelfSignedTLS(t *testing.T) {
	dir := t.TempDir()
	c := TLSConfig{SelfSigned: true}
	conf, err := c.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(dir, SelfSignedCert))
	if st, _ := os.Stat(filepath.Join(dir, SelfSignedKey)); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode().Perm())
	}
	if _, err := c.Load(dir); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, SelfSignedCert))
	if !bytes.Equal(first, again) {
		t.Error("the certificate was made again; browsers would warn again")
	}

	// Not httptest's StartTLS: it would add its own certificate.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })}
	go srv.Serve(tls.NewListener(ln, conf))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(first)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Get("https://" + ln.Addr().String()) // the IP must be in the certificate
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cl.CloseIdleConnections()

	for _, bad := range []TLSConfig{{Cert: "a"}, {Cert: "a", Key: "b", SelfSigned: true}} {
		if _, err := bad.Load(dir); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestAnonymousReadMap(t *testing.T) {
	yes, no := true, false
	m := AnonymousReadMap(&no, map[string]*bool{"door": &yes, "cam": nil})
	if len(m) != 2 || m["*"] != false || m["door"] != true {
		t.Errorf("%v", m)
	}
	if m := AnonymousReadMap(nil, nil); len(m) != 0 {
		t.Errorf("%v", m)
	}
}
