// Keeps the inbox current without a reload: its rows are fetched again every few
// seconds (new requests appear, answered and expired ones leave), and the time
// each request has left counts down in between. Without this script the page
// still works; it is only as old as its last load.
"use strict";

const REFRESH_MS = 3000;

function countDown() {
  for (const time of document.querySelectorAll("time.left")) {
    const seconds = Math.floor((Date.parse(time.dateTime) - Date.now()) / 1000);
    time.textContent = seconds <= 0 ? "expired"
      : seconds < 120 ? seconds + " s"
      : seconds < 7200 ? Math.floor(seconds / 60) + " min"
      : seconds < 172800 ? Math.floor(seconds / 3600) + " h"
      : Math.floor(seconds / 86400) + " days";
  }
}

async function refresh(box) {
  try {
    const response = await fetch(box.dataset.rows, { headers: { Accept: "text/html" } });
    if (response.ok && !response.redirected) {
      box.innerHTML = await response.text();  // rendered and escaped by the server
      countDown();
    }
  } catch (error) {
    // The server is away for a moment: the next round tries again.
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("requests");
  if (!box) return;
  setInterval(countDown, 1000);
  setInterval(() => refresh(box), REFRESH_MS);
});
