// The host console's commune tiles: the occurrence's communes, 9 or 16 at a time, filtered by
// province. Each tile on the page asks POST {watch-url} (the form's CSRF token and the commune's
// id) for a WHEP URL and token, and plays the commune's own camera (video only; whip.js signals).
// Changing the page, the filter or the tile count, or leaving, deletes every tile's WHEP
// resource: the origin then stops the uplinks nobody watches.
"use strict";

(function () {
  const root = document.getElementById("host-communes");
  if (!root) return;
  const msg = root.dataset;
  const form = document.getElementById("communes-form");
  const provinceSelect = document.getElementById("communes-province");
  const perSelect = document.getElementById("communes-per");
  const prevButton = document.getElementById("communes-prev");
  const nextButton = document.getElementById("communes-next");
  const pageLabel = document.getElementById("communes-page");
  const grid = document.getElementById("communes-tiles");
  const communes = JSON.parse(document.getElementById("communes-data").textContent);
  const RETRY_MS = 15000; // a commune not sending yet is asked again while its tile is shown

  let page = 0;
  let generation = 0; // bumped on every page change: late answers for an older page are hung up
  let viewers = []; // {pc, resource, token} of the tiles on the page

  const { fill } = window.vcsWhip;

  function shown() {
    const province = provinceSelect.value;
    return province ? communes.filter((c) => c.province === province) : communes;
  }

  async function watchInfo(endpointId) {
    const body = new FormData(form);
    body.set("endpoint_id", endpointId);
    const response = await fetch(msg.watchUrl, { method: "POST", body, credentials: "same-origin" });
    const type = response.headers.get("Content-Type") || "";
    if (!response.ok) {
      throw new Error(type.includes("json") ? (await response.json()).error : `HTTP ${response.status}`);
    }
    return response.json();
  }

  async function subscribe(info, video) {
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", (event) => {
      video.srcObject = new MediaStream([event.track]);
    });
    const viewer = { pc, resource: null, token: info.token };
    try {
      viewer.resource = await window.vcsWhip.signal(pc, info.whep_url, info.token, msg);
    } catch (error) {
      pc.close();
      throw error;
    }
    return viewer;
  }

  function hangUp(viewer, leaving) {
    if (viewer.resource) {
      // keepalive: the DELETE still goes out while the page unloads
      fetch(viewer.resource, { method: "DELETE", headers: { Authorization: `Bearer ${viewer.token}` }, keepalive: leaving }).catch(() => {});
    }
    viewer.pc.close();
  }

  function stopAll(leaving) {
    generation += 1;
    for (const viewer of viewers) hangUp(viewer, leaving);
    viewers = [];
  }

  async function play(commune, tile, mine) {
    const state = tile.querySelector(".tile-state");
    const video = tile.querySelector("video");
    state.textContent = msg.msgConnecting;
    try {
      const info = await watchInfo(commune.id);
      if (mine !== generation) return;
      const viewer = await subscribe(info, video);
      if (mine !== generation) return hangUp(viewer, false);
      viewers.push(viewer);
      tile.dataset.state = "connecting";
      // the first frame, not "playing": the browser holds a muted video off screen paused
      video.addEventListener("loadeddata", () => {
        tile.dataset.state = "playing";
        state.textContent = msg.msgLive;
      }, { once: true });
    } catch (error) {
      if (mine !== generation) return;
      tile.dataset.state = "failed";
      state.textContent = fill(msg.msgFailed, { error: error.message });
      setTimeout(() => {
        if (mine === generation) play(commune, tile, mine);
      }, RETRY_MS);
    }
  }

  function tileFor(commune) {
    const tile = document.createElement("figure");
    tile.className = "commune-tile";
    tile.dataset.endpoint = commune.id;
    const video = document.createElement("video");
    video.className = "video";
    video.autoplay = true;
    video.muted = true;
    video.playsInline = true;
    const caption = document.createElement("figcaption");
    const name = document.createElement("span");
    name.textContent = `${commune.name} · ${commune.province_name}`;
    const state = document.createElement("span");
    state.className = "tile-state muted";
    caption.append(name, state);
    tile.append(video, caption);
    return tile;
  }

  function render() {
    stopAll(false);
    const mine = generation;
    const per = Number(perSelect.value) === 16 ? 16 : 9;
    const list = shown();
    const pages = Math.max(1, Math.ceil(list.length / per));
    page = Math.min(Math.max(page, 0), pages - 1);
    pageLabel.textContent = fill(msg.msgPage, { page: page + 1, pages });
    prevButton.disabled = page === 0;
    nextButton.disabled = page >= pages - 1;
    grid.className = `commune-tiles per-${per}`;
    grid.replaceChildren();
    if (!list.length) {
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = msg.msgNone;
      grid.append(empty);
      return;
    }
    for (const commune of list.slice(page * per, (page + 1) * per)) {
      const tile = tileFor(commune);
      grid.append(tile);
      play(commune, tile, mine);
    }
  }

  prevButton.addEventListener("click", () => {
    page -= 1;
    render();
  });
  nextButton.addEventListener("click", () => {
    page += 1;
    render();
  });
  for (const select of [provinceSelect, perSelect]) {
    select.addEventListener("change", () => {
      page = 0;
      render();
    });
  }
  window.addEventListener("pagehide", () => stopAll(true));
  render();
})();
