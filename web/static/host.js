// The host console: the browser's camera and microphone go into the meeting over WHIP
// (RFC 9725), and the program the communes receive comes back over WHEP as a preview.
// Tokens come from POST {session-url} (the page's CSRF token in the body); nothing is sent
// before "start". Signalling is whip.js's.
"use strict";

(function () {
  const root = document.getElementById("host-console");
  if (!root) return;
  const msg = root.dataset;
  const statusBox = document.getElementById("host-status");
  const localVideo = document.getElementById("host-local");
  const programVideo = document.getElementById("host-program");
  const cameraSelect = document.getElementById("host-camera");
  const micSelect = document.getElementById("host-mic");
  const startButton = document.getElementById("host-start");
  const stopButton = document.getElementById("host-stop");

  let stream = null;
  let publisher = null; // {pc, resource, token}
  let viewer = null;
  let statsTimer = null;

  function say(text, kind) {
    statusBox.textContent = text;
    statusBox.className = `alert alert-${kind || "info"}`;
  }

  const { fill } = window.vcsWhip;

  async function openCamera() {
    const constraints = {
      audio: micSelect.value ? { deviceId: { exact: micSelect.value } } : true,
      video: cameraSelect.value
        ? { deviceId: { exact: cameraSelect.value }, width: { ideal: 1280 }, height: { ideal: 720 } }
        : { width: { ideal: 1280 }, height: { ideal: 720 } },
    };
    const next = await navigator.mediaDevices.getUserMedia(constraints);
    if (stream) {
      for (const track of stream.getTracks()) track.stop();
    }
    stream = next;
    localVideo.srcObject = stream;
    if (publisher) {
      // swap the tracks being sent without a new negotiation
      for (const sender of publisher.pc.getSenders()) {
        const track = stream.getTracks().find((t) => sender.track && t.kind === sender.track.kind);
        if (track) await sender.replaceTrack(track);
      }
    }
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    for (const [select, kind] of [[cameraSelect, "videoinput"], [micSelect, "audioinput"]]) {
      const current = stream && stream.getTracks().find((t) => t.kind === (kind === "videoinput" ? "video" : "audio"));
      const currentId = current && current.getSettings ? current.getSettings().deviceId : "";
      select.replaceChildren();
      devices.filter((d) => d.kind === kind).forEach((device, index) => {
        const option = document.createElement("option");
        option.value = device.deviceId;
        option.textContent = device.label || `${kind === "videoinput" ? "Camera" : "Micro"} ${index + 1}`;
        option.selected = device.deviceId === currentId;
        select.append(option);
      });
      select.disabled = select.options.length === 0;
    }
  }

  function signal(pc, url, token) {
    return window.vcsWhip.signal(pc, url, token, msg);
  }

  async function session() {
    const body = new FormData(document.getElementById("host-form"));
    const response = await fetch(msg.sessionUrl, { method: "POST", body, credentials: "same-origin" });
    const type = response.headers.get("Content-Type") || "";
    if (!response.ok) {
      const error = type.includes("json") ? (await response.json()).error : `HTTP ${response.status}`;
      throw new Error(error);
    }
    return response.json();
  }

  async function publish(info) {
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    }
    pc.addEventListener("connectionstatechange", () => {
      document.getElementById("host-connection").textContent = pc.connectionState;
    });
    const resource = await signal(pc, info.whip_url, info.publish_token);
    return { pc, resource, token: info.publish_token };
  }

  async function preview(info) {
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const incoming = new MediaStream();
    pc.addEventListener("track", (event) => {
      incoming.addTrack(event.track);
      programVideo.srcObject = incoming;
    });
    const resource = await signal(pc, info.whep_url, info.subscribe_token);
    return { pc, resource, token: info.subscribe_token };
  }

  async function hangUp(peer) {
    if (!peer) return;
    if (peer.resource) {
      try {
        await fetch(peer.resource, { method: "DELETE", headers: { Authorization: `Bearer ${peer.token}` } });
      } catch (error) {
        // the node ends the resource itself when the peer goes away
      }
    }
    peer.pc.close();
  }

  let lastBytes = null;
  async function sampleStats() {
    if (!publisher) return;
    const report = await publisher.pc.getStats();
    let bytes = 0;
    let frame = "";
    report.forEach((entry) => {
      if (entry.type === "outbound-rtp") {
        bytes += entry.bytesSent || 0;
        if (entry.kind === "video" && entry.frameWidth) frame = `${entry.frameWidth}×${entry.frameHeight}`;
      }
    });
    const now = performance.now();
    if (lastBytes) {
      const kbps = Math.round(((bytes - lastBytes.bytes) * 8) / (now - lastBytes.at));
      document.getElementById("host-sending").textContent = `${kbps} kbps${frame ? ` · ${frame}` : ""}`;
    }
    lastBytes = { bytes, at: now };
  }

  async function start() {
    startButton.disabled = true;
    say(msg.msgConnecting);
    try {
      const info = await session();
      publisher = await publish(info);
      stopButton.disabled = false;
      say(msg.msgLive, "success");
      statsTimer = setInterval(sampleStats, 2000);
      try {
        viewer = await preview(info);
      } catch (error) {
        console.warn("program preview failed", error); // the broadcast itself is on
      }
    } catch (error) {
      await stop(false);
      say(fill(msg.msgFailed, { error: error.message }), "error");
    }
  }

  async function stop(announce = true) {
    clearInterval(statsTimer);
    lastBytes = null;
    const peers = [viewer, publisher];
    viewer = publisher = null;
    for (const peer of peers) await hangUp(peer);
    programVideo.srcObject = null;
    stopButton.disabled = true;
    startButton.disabled = !stream;
    document.getElementById("host-connection").textContent = "—";
    document.getElementById("host-sending").textContent = "—";
    if (announce) say(msg.msgStopped);
  }

  async function init() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.RTCPeerConnection) {
      say(msg.msgUnsupported, "error");
      return;
    }
    say(msg.msgCamera);
    try {
      await openCamera();
      await listDevices();
      startButton.disabled = false;
      say(msg.msgReady, "success");
    } catch (error) {
      say(fill(msg.msgDenied, { error: error.name || error.message }), "error");
    }
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", () => stop(true));
  for (const select of [cameraSelect, micSelect]) {
    select.addEventListener("change", () => openCamera().catch((error) => say(fill(msg.msgDenied, { error: error.name }), "error")));
  }
  window.addEventListener("pagehide", () => {
    if (publisher || viewer) stop(false);
  });
  init();
})();
