// Package testsrc is camfeed's built-in video source: a pure-Go H.264
// encoder for a grayscale test pattern, used when there is no camera and as
// the instrument of every latency test.
//
// Each frame carries its capture time twice: in an SEI message
// (microseconds) and drawn as a pixel time code (milliseconds) that
// ReadTimeCode reads back from decoded pixels. docs/TIMECODE.md specifies
// both. The picture also shows a clock, a frame counter, a bouncing square
// and gray bars, so people can see it move.
//
// The stream is Constrained Baseline, one slice per picture, and lossless:
// pictures are built from I_PCM, flat I_16x16 and P_Skip macroblocks only
// (see slice.go for why each decodes exactly). That keeps the encoder small
// and fast (tens of microseconds a frame at 640x480, no allocations) at
// about 1.3 Mbit/s for 640x480 at 30 fps.
package testsrc
