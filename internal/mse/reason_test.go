package mse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/camfeed/camfeed/internal/hub"
)

// TestLeaveReason: a viewer going away, however the socket says so, is
// the normal end of a stream; the left line says so in words.
func TestLeaveReason(t *testing.T) {
	gone := "viewer closed the connection"
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, gone},
		{context.Canceled, gone},
		{&net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, gone},
		{&net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}, gone},
		{fmt.Errorf("write: %w", net.ErrClosed), gone},
		{websocket.ErrCloseSent, gone},
		{&websocket.CloseError{Code: websocket.CloseGoingAway}, gone},
		{hub.ErrClosed, "feed closed"},
		{os.ErrDeadlineExceeded, "viewer stopped reading (write timed out)"},
		{errors.New("stream changed"), "stream changed"},
	} {
		if got := leaveReason(tc.err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
}
