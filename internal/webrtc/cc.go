package webrtc

import "github.com/camfeed/camfeed/internal/webrtc/congestion"

// A viewer's link is judged by package congestion (shared with the WHIP
// push): full stream while the link carries it, keyframes only, paced at
// the rate it delivers, while it does not.
const (
	modeFull      = congestion.Full
	modeKeyframes = congestion.Keyframes
)

var newCongestion = congestion.New
