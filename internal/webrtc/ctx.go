package webrtc

import "context"

// contextWithCancel roots a peer's or broadcaster's life: they outlive
// the HTTP request that made them.
func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
