package pushurl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// NetWords says in words what a network error means to someone whose
// push failed, for the classes every protocol shares; ok is false for
// others. Library texts are never passed on: some quote the URL.
func NetWords(err error, timeout time.Duration) (words string, ok bool) {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.As(err, &dnsErr):
		return "cannot find the server's address (DNS)", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens there (connection refused)", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the server (network unreachable)", true
	case errors.As(err, &certErr):
		return "the server's TLS certificate is not valid: " + certErr.Err.Error(), true
	case errors.As(err, &recErr):
		return "the server does not speak TLS here (try the scheme without s)", true
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer in %s", Seconds(timeout)), true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "the server closed the connection", true
	}
	return "", false
}

// Seconds writes a timeout the way people say it: "5 s", "1.5 s".
func Seconds(d time.Duration) string {
	return fmt.Sprintf("%g s", d.Seconds())
}
