// The live view: follow /meetings/{id}/live/events (Server-Sent Events, the session cookie
// authenticates them) and update the counters, the tiles, the tiers and the worst links in place.
// Without this script the page shows the state it was loaded with, and a refresh link.
"use strict";

(function () {
  const root = document.getElementById("live");
  if (!root || !window.EventSource) {
    return;
  }
  const lang = root.dataset.lang === "vi" ? "vi-VN" : "en-GB";
  const integer = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
  const clock = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", year: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const SHARE_CLASSES = ["share-none", "share-0", "share-1", "share-2", "share-3", "share-4"];

  // the same thresholds as web/ui/tilemap.py share_class()
  function shareClass(joined, expected) {
    if (expected <= 0) return "share-none";
    const share = joined / expected;
    if (share >= 0.95) return "share-4";
    if (share >= 0.8) return "share-3";
    if (share >= 0.5) return "share-2";
    if (share > 0) return "share-1";
    return "share-0";
  }

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function localTime(date) {
    // dd/MM/yyyy HH:mm:ss, as the server writes it
    const parts = Object.fromEntries(clock.formatToParts(date).map((p) => [p.type, p.value]));
    return `${parts.day}/${parts.month}/${parts.year} ${parts.hour}:${parts.minute}:${parts.second}`;
  }

  function updateTiles(provinces) {
    for (const tile of document.querySelectorAll("#tilemap .tile")) {
      const counts = provinces[tile.dataset.code] || {};
      const expected = counts.expected || 0;
      const joined = counts.joined || 0;
      const wanted = shareClass(joined, expected);
      if (!tile.classList.contains(wanted)) {
        tile.classList.remove(...SHARE_CLASSES);
        tile.classList.add(wanted);
      }
      const count = tile.querySelector(".tile-count");
      if (!expected) {
        count.textContent = "—";
        continue;
      }
      let joinedEl = count.querySelector(".tile-joined");
      let expectedEl = count.querySelector(".tile-expected");
      if (!joinedEl || !expectedEl) {
        count.textContent = "";
        joinedEl = document.createElement("span");
        joinedEl.className = "tile-joined";
        expectedEl = document.createElement("span");
        expectedEl.className = "tile-expected";
        count.append(joinedEl, "/", expectedEl);
      }
      joinedEl.textContent = integer.format(joined);
      expectedEl.textContent = integer.format(expected);
    }
  }

  function tierLabel(tier) {
    const row = document.querySelector(`#live-tiers tr[data-tier="${CSS.escape(tier || "unknown")}"] td`);
    return row ? row.textContent : tier || "";
  }

  function updateTiers(tiers) {
    for (const row of document.querySelectorAll("#live-tiers tr[data-tier]")) {
      row.querySelector(".tier-count").textContent = integer.format(tiers[row.dataset.tier] || 0);
    }
  }

  function updateWorst(worst) {
    const body = document.querySelector("#live-worst tbody");
    if (!body) return;
    const rows = worst.map((w) => {
      const tr = document.createElement("tr");
      const cells = [
        [w.name, ""],
        [decimal.format(w.loss_pct || 0), "num"],
        [integer.format(w.rtt_ms || 0), "num"],
        [tierLabel(w.tier), ""],
      ];
      for (const [text, className] of cells) {
        const td = document.createElement("td");
        td.textContent = text;  // never markup: names come from the registry, but still
        if (className) td.className = className;
        tr.append(td);
      }
      return tr;
    });
    body.replaceChildren(...rows);
    document.getElementById("live-worst-empty").classList.toggle("hidden", worst.length > 0);
  }

  function updateFloor(floor) {
    const holder = document.getElementById("floor-holder");
    if (!holder) return;
    let name = holder.dataset.hostText;
    if (floor) {
      const option = document.querySelector(`#f-endpoint_id option[value="${CSS.escape(floor)}"]`);
      name = option ? option.textContent.split(" · ")[0] : floor;
    }
    holder.textContent = name;
  }

  function apply(summary) {
    setText("live-expected", integer.format(summary.expected));
    setText("live-online", integer.format(summary.online));
    setText("live-joined", integer.format(summary.joined));
    setText("live-failed", integer.format(summary.failed));
    updateTiles(summary.provinces || {});
    updateTiers(summary.tiers || {});
    updateWorst(summary.worst || []);
    updateFloor(summary.floor);
    setText("live-updated-label", root.dataset.updatedText.replace("{time}", localTime(new Date())));
  }

  const status = document.getElementById("live-conn");
  const events = new EventSource(root.dataset.eventsUrl);
  events.addEventListener("open", () => {
    status.textContent = root.dataset.liveText;
    root.classList.add("is-live");
  });
  events.addEventListener("error", () => {
    // EventSource reconnects by itself; say so while it does
    status.textContent = root.dataset.lostText;
    root.classList.remove("is-live");
  });
  events.addEventListener("live", (event) => {
    try {
      apply(JSON.parse(event.data));
    } catch (error) {
      console.error("live update failed", error);
    }
  });
  window.addEventListener("pagehide", () => events.close());
})();
