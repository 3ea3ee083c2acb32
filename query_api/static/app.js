// The freshindex search page: plain DOM, no build step.
"use strict";

const $ = (selector) => document.querySelector(selector);

// An API key, when the API requires one: from the page's #key=... or from a previous visit.
const apiKey = new URLSearchParams(location.hash.slice(1)).get("key") ||
  localStorage.getItem("freshindex-key") || "";
const authHeaders = apiKey ? {authorization: `Bearer ${apiKey}`} : {};

function askForKey() {
  $("#key-form").hidden = false;
  $("#api-key").focus();
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("freshindex-key", $("#api-key").value.trim());
  location.hash = "";
  location.reload();
});

function ago(timestamp) {
  const seconds = Math.max(0, (Date.now() - Date.parse(timestamp)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}

function highlight(text, query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || [];
  let html = escapeHtml(text.length > 400 ? text.slice(0, 400) + "…" : text);
  for (const word of new Set(words)) {
    const pattern = new RegExp(`(${word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})`, "giu");
    html = html.replace(pattern, "<mark>$1</mark>");
  }
  return html;
}

async function search(event) {
  event?.preventDefault();
  const query = $("#query").value.trim();
  if (!query) return;
  $("#search-status").textContent = "Searching…";
  const response = await fetch("/v1/search", {
    method: "POST",
    headers: {"content-type": "application/json", ...authHeaders},
    // One result per document, with up to two more of its matching passages.
    body: JSON.stringify({query, k: 10, mode: $("#mode").value, group_by: "document",
      chunks_per_document: 3}),
  });
  const body = await response.json();
  if (response.status === 401) askForKey();
  if (!response.ok) {
    $("#search-status").textContent = `Error ${response.status}: ${JSON.stringify(body.detail)}`;
    return;
  }
  const results = $("#results");
  results.replaceChildren(...body.hits.map((hit) => {
    const item = document.createElement("li");
    item.innerHTML = `
      <div class="hit-title">${escapeHtml(hit.title || hit.doc_id)}</div>
      <div class="hit-meta">${escapeHtml(hit.doc_id)} · chunk ${hit.ordinal}
        · score ${hit.score.toFixed(3)} · version ${hit.version}
        · indexed <time datetime="${hit.indexed_at}">${ago(hit.indexed_at)}</time></div>
      <p>${highlight(hit.text, query)}</p>
      ${hit.more_chunks.map((chunk) => `
        <p class="more">chunk ${chunk.ordinal}: ${highlight(chunk.text, query)}</p>`).join("")}`;
    return item;
  }));
  $("#search-status").textContent =
    `${body.hits.length} result(s) in ${Math.round(body.took_ms)} ms`;
}

async function refreshStatus() {
  try {
    const response = await fetch("/v1/stats", {headers: authHeaders});
    if (response.status === 401) askForKey();
    if (response.status === 403) {  // a tenant key: index-wide numbers need an admin key
      $("[data-stat=documents]").textContent = "needs an admin key";
      return;
    }
    const stats = await response.json();
    const lag = stats.sources.reduce((sum, s) => sum + (s.lag || 0), 0);
    const values = {...stats, lag, last_change_at: stats.last_change_at ?
      ago(stats.last_change_at) : "never"};
    for (const cell of document.querySelectorAll("[data-stat]")) {
      cell.textContent = values[cell.dataset.stat];
    }
  } catch (error) {
    $("[data-stat=documents]").textContent = "unavailable";
  }
}

function followChanges() {
  const feed = $("#feed");
  const query = apiKey ? `?api_key=${encodeURIComponent(apiKey)}` : "";
  const source = new EventSource(`/v1/changes${query}`);
  source.addEventListener("change", (message) => {
    const change = JSON.parse(message.data);
    const item = document.createElement("li");
    item.className = `op-${change.op}`;
    item.textContent = `${change.op} ${change.doc_id} v${change.version}`;
    item.title = change.indexed_at;
    feed.prepend(item);
    while (feed.children.length > 100) feed.lastChild.remove();
    refreshStatus();
    if ($("#query").value.trim()) search();  // results follow the index, no reload
  });
}

$("#search-form").addEventListener("submit", search);
refreshStatus();
setInterval(refreshStatus, 5000);
followChanges();
