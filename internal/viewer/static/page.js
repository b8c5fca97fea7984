// The feed page and the embed page: a player, its overlay, and buttons to
// switch protocol and go full screen. URL parameters: ?proto=webrtc|mse|hls
// forces a protocol, ?overlay=0 hides the overlay, ?measure=1 also reads
// the test pattern's pixel time code (tests and measurements).
"use strict";
function camfeedPage(cfg) {
  var scriptAt = performance.now();
  var q = new URLSearchParams(location.search);
  var video = document.getElementById("video"), overlay = document.getElementById("overlay");
  var status = document.getElementById("status"), stage = document.getElementById("stage");
  var base = location.pathname.replace(/\/embed$/, "/").replace(/[^/]*$/, "");
  var showOverlay = q.get("overlay") !== "0";
  var player = new CamfeedPlayer(video, {
    base: base,
    protocols: cfg.protocols,
    protocol: q.get("proto") || "auto",
    measure: q.get("measure") === "1",
    onstats: draw,
    onstatus: function (st, why, proto) {
      status.textContent = st === "playing" ? "" : (st === "connecting" ? "Connecting (" + proto + ")…" : st === "reconnecting" ? "Reconnecting… " + why : "");
      status.hidden = st === "playing";
      mark();
    }
  });
  window.camfeedPlayer = player;
  player.marks.script = scriptAt;
  // The stream is asked for first; the controls are built while it
  // connects.
  player.start();
  // Leaving the page hangs up (a WebRTC session is DELETEd), so the
  // viewer's slot is free at once rather than when ICE times out.
  window.addEventListener("pagehide", function (e) { if (!e.persisted) player.stop(); });

  function draw(s) {
    overlay.hidden = !showOverlay;
    if (!showOverlay) return;
    overlay.textContent = camfeedPage.overlayText(s);
  }

  // Protocol buttons: Auto first, then each enabled protocol.
  var protos = document.getElementById("protos");
  function mark() {
    if (!protos) return;
    protos.querySelectorAll("button").forEach(function (b) {
      var on = b.dataset.proto === player.choice;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.title = b.dataset.proto === "auto" ? "Pick the best protocol" + (player.choice === "auto" ? " (now " + player.stats.protocol + ")" : "") : "";
    });
  }
  if (protos) {
    ["auto"].concat(cfg.protocols).forEach(function (p) {
      var b = document.createElement("button");
      b.type = "button";
      b.dataset.proto = p;
      b.textContent = p === "auto" ? "Auto" : CamfeedPlayer.names[p];
      b.onclick = function () { player.use(p); mark(); };
      protos.appendChild(b);
    });
  }
  var fs = document.getElementById("fullscreen");
  if (fs) {
    fs.onclick = function () {
      if (document.fullscreenElement || document.webkitFullscreenElement) {
        (document.exitFullscreen || document.webkitExitFullscreen).call(document);
      } else if (stage.requestFullscreen) {
        stage.requestFullscreen().catch(function () {});
      } else if (video.webkitEnterFullscreen) {
        video.webkitEnterFullscreen(); // iPhone: only the video element can
      }
    };
  }
  var st = document.getElementById("stats");
  if (st) {
    st.onclick = function () {
      showOverlay = !showOverlay;
      st.setAttribute("aria-pressed", showOverlay ? "true" : "false");
      draw(player.stats);
    };
  }
  // The bar hides itself after a while without touch or mouse movement.
  var bar = document.getElementById("bar"), hideTimer;
  function wake() {
    if (!bar) return;
    bar.classList.remove("idle");
    clearTimeout(hideTimer);
    hideTimer = setTimeout(function () { bar.classList.add("idle"); }, 4000);
  }
  ["mousemove", "touchstart", "keydown"].forEach(function (e) { document.addEventListener(e, wake, {passive: true}); });
  wake();
  draw(player.stats);
  mark();
  player.mark("pageDone");
}

// overlayText is the overlay's text for the player's stats. Rates and
// latency are shown once the player has them (a second of frames, a
// reading against a synced clock), not as zeros before.
camfeedPage.overlayText = function (s) {
  function fmtRate(b) {
    return b >= 1e6 ? (b / 1e6).toFixed(2) + " Mbit/s" : Math.round(b / 1e3) + " kbit/s";
  }
  var parts = [s.protocol];
  if (s.width) parts.push(s.width + "×" + s.height);
  if (s.fps !== null && s.fps !== undefined) parts.push(Math.round(s.fps) + " fps");
  if (s.bitrate !== null && s.bitrate !== undefined) parts.push(fmtRate(s.bitrate));
  var lat = s.latency === null || s.latency === undefined ? "latency …" : s.latencyKind + " " + Math.max(0, Math.round(s.latency)) + " ms";
  return parts.join(" · ") + "\n" + lat;
};
