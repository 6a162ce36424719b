// WHIP/WHEP signalling (RFC 9725) shared by the host console's scripts: the offer goes out once ICE
// is gathered (the SFU takes no trickle ICE), with the media token as a bearer; a 201's answer is
// applied and its Location returned. `messages` holds the page's texts for an unreachable node
// (msgUnreachable) and a refusal (msgRefused, with {status}).
"use strict";

window.vcsWhip = (function () {
  const ICE_WAIT_MS = 3000;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => (key in values ? String(values[key]) : `{${key}}`));
  }

  function iceGathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") {
          pc.removeEventListener("icegatheringstatechange", done);
          resolve();
        }
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, ICE_WAIT_MS); // send what we have: host candidates come first
    });
  }

  // Returns the resource's absolute URL (null when the node named none).
  async function signal(pc, url, token, messages) {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await iceGathered(pc);
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
        body: pc.localDescription.sdp,
      });
    } catch (error) {
      throw new Error(messages.msgUnreachable);
    }
    if (response.status !== 201) {
      const reason = (await response.text()).trim().slice(0, 200);
      throw new Error(fill(messages.msgRefused, { status: `${response.status}${reason ? ` (${reason})` : ""}` }));
    }
    const location = response.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    return location ? new URL(location, url).toString() : null;
  }

  return { fill, signal };
})();
