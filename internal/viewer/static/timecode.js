// Reads the test pattern's pixel time code (internal/testsrc/timecode.go):
// 56 cells of 8x8 luma pixels at the top left, wrapping at the right
// edge: start marker 1010, 48 bits of Unix milliseconds (most significant
// first), end marker 0101. White cells are 1. Like testsrc.ReadTimeCode it
// averages the 2x2 pixels at each cell's middle and thresholds at 128, so
// the limited-to-full range expansion of a canvas copy does not matter.
"use strict";
(function (global) {
  var CELL = 8, BITS = 48, CELLS = 4 + BITS + 4;
  var START = [1, 0, 1, 0], END = [0, 1, 0, 1];
  var canvas = null, ctx = null;

  // rowsFor is how many pixel rows of the picture hold the time code.
  function rowsFor(width) {
    var cols = Math.floor(width / CELL);
    return Math.ceil(CELLS / cols) * CELL;
  }

  // read decodes an ImageData (RGBA) of the top rows of a picture of the
  // given width. It returns Unix milliseconds, or null without markers.
  function read(img, width) {
    var cols = Math.floor(width / CELL), d = img.data, w = img.width;
    function luma(x, y) {
      var o = (y * w + x) * 4;
      return 0.299 * d[o] + 0.587 * d[o + 1] + 0.114 * d[o + 2];
    }
    function bit(i) {
      var x = (i % cols) * CELL + CELL / 2, y = Math.floor(i / cols) * CELL + CELL / 2;
      return luma(x - 1, y - 1) + luma(x, y - 1) + luma(x - 1, y) + luma(x, y) >= 4 * 128 ? 1 : 0;
    }
    for (var i = 0; i < 4; i++) {
      if (bit(i) !== START[i] || bit(4 + BITS + i) !== END[i]) return null;
    }
    var ms = 0;
    for (i = 0; i < BITS; i++) ms = ms * 2 + bit(4 + i);
    return ms;
  }

  // fromVideo copies the top of the current video frame to a canvas and
  // reads it. The copy is at the picture's own size, so cells stay 8x8.
  function fromVideo(video) {
    var w = video.videoWidth, h = video.videoHeight;
    if (!w || !h || w < CELL) return null;
    var rows = Math.min(rowsFor(w), h);
    if (!canvas) {
      canvas = document.createElement("canvas");
      ctx = canvas.getContext("2d", {willReadFrequently: true});
    }
    if (canvas.width !== w || canvas.height !== rows) {
      canvas.width = w;
      canvas.height = rows;
    }
    ctx.drawImage(video, 0, 0, w, rows, 0, 0, w, rows);
    return read(ctx.getImageData(0, 0, w, rows), w);
  }

  global.camfeedTimeCode = {read: read, fromVideo: fromVideo, rowsFor: rowsFor};
})(window);
