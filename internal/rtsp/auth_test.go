package rtsp

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// testAuth: "open" may be read by anyone; "cam" needs alice or carol to
// read and bob to publish. carol's password is stored hashed: Password
// does not know it, so she can only log in with Basic.
type testAuth struct{ digest bool }

var testUsers = map[string]string{"alice": "secret", "bob": "hunter2", "carol": "hashed"}

func (testAuth) Allow(feed, action, user, pass, _ string) bool {
	switch {
	case feed == "open" && action == ActionRead:
		return true
	case user == "" || testUsers[user] != pass:
		return false
	case action == ActionRead:
		return user == "alice" || user == "carol"
	default:
		return user == "bob"
	}
}

func (testAuth) Password(user string) (string, bool) {
	p, ok := testUsers[user]
	return p, ok && user != "carol"
}

func (a testAuth) DigestCapable() bool { return a.digest }

// rawRequest sends one RTSP request and returns the status line.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

func TestAuth(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	s, lg := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h, "open": h}), nil, testAuth{digest: true})
	addr := s.Addr().String()
	withUser := func(user, pass, feed string) string {
		return fmt.Sprintf("rtsp://%s:%s@%s/%s", user, pass, addr, feed)
	}

	t.Run("anonymous", func(t *testing.T) {
		r, err := openReader(url(s, "open"), readerOpts{protocol: gortsplib.ProtocolTCP})
		if err != nil {
			t.Fatalf("anonymous read of an open feed: %v", err)
		}
		r.close()
		if _, err := openReader(url(s, "cam"), readerOpts{protocol: gortsplib.ProtocolTCP}); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("anonymous read of a closed feed: got %v, want 401", err)
		}
	})
	t.Run("digest", func(t *testing.T) {
		// gortsplib's client, like ffmpeg, answers the Digest challenge.
		r, err := openReader(withUser("alice", "secret", "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
		if err != nil {
			t.Fatalf("alice: %v", err)
		}
		r.waitUnits(t, 1, 3*testsupport.Patience)
		r.close()
	})
	t.Run("basic", func(t *testing.T) {
		req := func(user, pass string) string {
			return "DESCRIBE rtsp://" + addr + "/cam RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic " +
				base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n\r\n"
		}
		if got := rawRequest(t, addr, req("alice", "secret")); got != "RTSP/1.0 200 OK" {
			t.Errorf("Basic with the right password: %q", got)
		}
		if got := rawRequest(t, addr, req("alice", "wrong")); got != "RTSP/1.0 401 Unauthorized" {
			t.Errorf("Basic with a wrong password: %q", got)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		before := strings.Count(lg.String(), "refused credentials")
		for range 20 {
			_, err := openReader(withUser("alice", "nope", "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("wrong password: got %v, want 401", err)
			}
		}
		_, err := openReader(withUser("mallory", "x", "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("unknown user: got %v, want 401", err)
		}
		time.Sleep(1100 * time.Millisecond) // the summary of the second
		n := strings.Count(lg.String(), "refused credentials") - before
		if n < 1 || n > 3 {
			t.Errorf("%d log lines for 21 refusals in about a second, want 1 to 3 (rate-limited)\n%s", n, lg.String())
		}
		// Still serving.
		r, err := openReader(withUser("alice", "secret", "cam"), readerOpts{protocol: gortsplib.ProtocolTCP})
		if err != nil {
			t.Fatalf("after refusals: %v", err)
		}
		r.close()
	})
	t.Run("hashed password", func(t *testing.T) {
		// Digest is offered (every user but carol has a plain password),
		// so the client uses it, and carol cannot log in.
		if _, err := openReader(withUser("carol", "hashed", "cam"), readerOpts{protocol: gortsplib.ProtocolTCP}); err == nil {
			t.Error("carol logged in with Digest")
		}
		// With Basic she can.
		got := rawRequest(t, addr, "DESCRIBE rtsp://"+addr+"/cam RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic "+
			base64.StdEncoding.EncodeToString([]byte("carol:hashed"))+"\r\n\r\n")
		if got != "RTSP/1.0 200 OK" {
			t.Errorf("carol with Basic: %q", got)
		}
	})
	t.Run("ffmpeg", func(t *testing.T) {
		testsupport.NeedTool(t, "ffprobe")
		out, err := testsupport.Run(t, time.Minute, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=width",
			"-of", "csv=p=0", withUser("alice", "secret", "cam"))
		if err != nil || strings.TrimSpace(out) != "320" {
			t.Errorf("ffprobe as alice: %v %q", err, out)
		}
		out, err = testsupport.Run(t, time.Minute, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", withUser("alice", "bad", "cam"))
		if err == nil || !strings.Contains(out, "401") {
			t.Errorf("ffprobe with a bad password: %v %q", err, out)
		}
	})
	t.Run("publish rights", func(t *testing.T) {
		_, err := startGoPublisher(t, withUser("alice", "secret", "cam"), &format.H264{PayloadTyp: 96, PacketizationMode: 1})
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("alice publishing: got %v, want 403", err)
		}
		_, err = startGoPublisher(t, url(s, "cam"), &format.H264{PayloadTyp: 96, PacketizationMode: 1})
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("anonymous publishing: got %v, want 401", err)
		}
		waitFor(t, "a log line", 3*testsupport.Patience, func() bool { return strings.Contains(lg.String(), "refused a user without the right") })
	})
}

// writeCert writes a self-signed certificate and key for 127.0.0.1.
func writeCert(t *testing.T) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "camfeed test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestAuthBasicOnly: when some user's password is stored hashed
// (DigestCapable false), only Basic is offered, and clients use it.
func TestAuthBasicOnly(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	s, _ := startServer(t, Config{}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, testAuth{digest: false})
	addr := s.Addr().String()
	if got := rawRequest(t, addr, "DESCRIBE rtsp://"+addr+"/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n"); got != "RTSP/1.0 401 Unauthorized" {
		t.Fatalf("no credentials: %q", got)
	}
	res, _, err := describe(t, url(s, "cam"))
	if err == nil || res == nil {
		t.Fatalf("DESCRIBE without credentials: %v", err)
	}
	if ch := strings.Join(res.Header["WWW-Authenticate"], " | "); ch != `Basic realm="camfeed"` {
		t.Errorf("challenge %q, want Basic only", ch)
	}
	r, err := openReader(fmt.Sprintf("rtsp://carol:hashed@%s/cam", addr), readerOpts{protocol: gortsplib.ProtocolTCP})
	if err != nil {
		t.Fatalf("carol with Basic: %v", err)
	}
	r.close()
	if testsupport.HaveTool(t, "ffprobe") {
		out, err := testsupport.Run(t, time.Minute, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=width",
			"-of", "csv=p=0", fmt.Sprintf("rtsp://carol:hashed@%s/cam", addr))
		if err != nil || strings.TrimSpace(out) != "320" {
			t.Errorf("ffprobe as carol: %v %q", err, out)
		}
	}
}

func TestRTSPS(t *testing.T) {
	testsupport.CheckGoroutines(t, "gortsplib", "camfeed/internal/rtsp")
	h, _ := newFeed(t, testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}, hub.Config{})
	waitKeyframe(t, h)
	cert, key := writeCert(t)
	s, _ := startServer(t, Config{ServerCert: cert, ServerKey: key}, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, testAuth{digest: true})
	u := fmt.Sprintf("rtsps://alice:secret@%s/cam", s.Addr())

	r, err := openReader(u, readerOpts{protocol: gortsplib.ProtocolTCP, tls: true})
	if err != nil {
		t.Fatalf("RTSPS over TCP: %v", err)
	}
	units := r.waitUnits(t, 30, 3*testsupport.Patience)
	if !units[0].key {
		t.Error("first unit over RTSPS is not a keyframe")
	}
	if got := s.Sessions("cam"); len(got) != 1 || !got[0].Secure || got[0].User != "alice" {
		t.Errorf("sessions: %+v", got)
	}
	r.close()

	if _, err := openReader(fmt.Sprintf("rtsp://alice:secret@%s/cam", s.Addr()), readerOpts{protocol: gortsplib.ProtocolTCP}); err == nil {
		t.Error("plain RTSP was served on the RTSPS port")
	}
	if testsupport.HaveTool(t, "ffmpeg") {
		out, err := testsupport.Run(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-i", u, "-frames:v", "30",
			"-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("ffmpeg over RTSPS: %v\n%s", err, out)
		}
	}
}

func TestStartErrors(t *testing.T) {
	h := hub.New(hub.Config{})
	t.Cleanup(h.Close)
	feeds := newTestFeeds(map[string]*hub.Hub{"cam": h})
	s, _ := startServer(t, Config{}, feeds, nil, nil)
	taken := s.Addr().String()

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"port taken", Config{Addr: taken, Transports: []string{"tcp"}}, "rtsp: listen on " + taken + ": listen tcp " + taken + ": bind: address already in use"},
		{"bad transport", Config{Addr: "127.0.0.1:0", Transports: []string{"quic"}}, `rtsp: transport "quic" is not one of udp, tcp, multicast`},
		{"cert without key", Config{Addr: "127.0.0.1:0", ServerCert: "x.pem"}, "rtsp: a server certificate needs a key, and a key a certificate"},
		{"odd UDP port", Config{Addr: "127.0.0.1:0", UDPRTPAddr: "127.0.0.1:8001", Transports: []string{"udp"}}, `rtsp: UDP RTP port "8001" must be an even number`},
		{"missing cert", Config{Addr: "127.0.0.1:0", ServerCert: "/nonexistent/cert.pem", ServerKey: "/nonexistent/key.pem"},
			"rtsp: load certificate: open /nonexistent/cert.pem: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s2 := New(tc.cfg, door.Unlimited(feeds), nil, nil, nil)
			err := s2.Start()
			s2.Close() // must be safe after a failed start
			s2.Close()
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}
