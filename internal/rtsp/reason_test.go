package rtsp

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// TestCloseReason: the normal ends of an RTSP session are said in words,
// for viewers and publishers alike; only what is not normal is an error's
// text.
func TestCloseReason(t *testing.T) {
	for _, tc := range []struct {
		who  string
		err  error
		want string
	}{
		{"viewer", nil, "session closed"},
		{"viewer", io.EOF, "viewer closed the connection"},
		{"publisher", fmt.Errorf("read: %w", io.EOF), "publisher closed the connection"},
		{"publisher", liberrors.ErrServerSessionTornDown{}, "publisher sent TEARDOWN"},
		{"viewer", errors.New("write timed out"), "write timed out"},
	} {
		if got := closeReason(tc.who, tc.err); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.who, tc.err, got, tc.want)
		}
	}
}
