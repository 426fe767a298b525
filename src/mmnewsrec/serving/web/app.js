// The live feed page: plain JavaScript over the service's HTTP API (no build step, no CDN).
"use strict";

const state = { user: null, token: sessionStorage.getItem("mmnewsrec-token") || "", demo: false, previous: [] };
const $ = (id) => document.getElementById(id);

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}

async function api(method, path, body) {
  const response = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401) $("token-form").hidden = false;
    throw new Error(data.error || response.statusText);
  }
  return data;
}

function status(text) { $("status").textContent = text; }

// Text from the service, shown as text: bidirectional overrides and isolates (U+202A-U+202E,
// U+2066-U+2069) are dropped, so a title cannot flip itself or the text around it.
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;
function clean(text) { return String(text ?? "").replace(BIDI_CONTROLS, ""); }

// A notice on screen for a few seconds: what a click changed, wherever the history is on the page.
let noticeTimer = null;
function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

// A new reader's id, made in the browser: the service keeps no state for a user until they click.
function newReaderId() {
  const bytes = new Uint8Array(4);
  crypto.getRandomValues(bytes);
  return "reader-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function renderHistory(history) {
  const list = $("history");
  list.replaceChildren();
  const recent = history.slice(-15).reverse();  // newest first
  recent.forEach((item, index) => {
    const li = element("li", { class: index === 0 ? "latest" : "", dir: "auto" }, clean(item.title || item.news_id), " ", element("span", { class: "cat" }, clean(item.category)));
    li.dataset.newsId = item.news_id;
    list.append(li);
  });
  if (!recent.length) list.append(element("li", { class: "empty" }, "No clicks yet: the feed shows what is popular. Read a story to start a history."));
}

function renderFeed(recommendations) {
  const list = $("feed");
  list.replaceChildren();
  const before = state.previous;
  recommendations.forEach((rec, position) => {
    const card = element("li", { class: "card" });
    card.dataset.newsId = rec.news_id;
    const was = before.indexOf(rec.news_id);
    let badge = null;
    if (before.length && was === -1) { card.classList.add("new"); badge = element("span", { class: "badge new" }, "new"); }
    else if (before.length && was !== position) { card.classList.add("moved"); badge = element("span", { class: "badge moved" }, was > position ? "up" : "down"); }
    if (rec.has_image) card.append(element("img", { src: "/news/" + encodeURIComponent(rec.news_id) + "/image", alt: "", loading: "lazy" }));
    const title = clean(rec.title || rec.news_id);
    card.append(element("div", { class: "meta" }, element("span", { class: "cat" }, clean(rec.category + (rec.subcategory ? " / " + rec.subcategory : ""))), badge || "", element("span", {}, "score " + rec.score.toFixed(2)), element("span", { class: "pipeline", title: "the feed pipeline that served this card" }, clean(rec.pipeline || ""))));
    card.append(element("h3", { dir: "auto" }, title));
    if (rec.abstract) card.append(element("p", { dir: "auto" }, clean(rec.abstract)));
    const read = element("button", { type: "button", "aria-label": "read: " + title }, "Read");
    read.addEventListener("click", () => click(rec.news_id, title));
    const why = element("button", { type: "button", class: "secondary", "aria-expanded": "false" }, "Why this?");
    why.addEventListener("click", () => explain(card, rec.news_id, why));
    card.append(element("div", { class: "actions" }, read, why));
    list.append(card);
  });
  if (!recommendations.length) list.append(element("li", { class: "empty" }, "No news to recommend yet: the service has none (add some with POST /news or serve --news)."));
  state.previous = recommendations.map((rec) => rec.news_id);
}

async function load(user, keepPrevious) {
  state.user = user;
  if (!keepPrevious) state.previous = [];
  $("user-id").value = user;
  status("loading " + user + " ...");
  try {
    const [history, feed] = await Promise.all([
      api("GET", "/users/" + encodeURIComponent(user)),
      api("GET", "/users/" + encodeURIComponent(user) + "/recommendations?k=12"),
    ]);
    renderHistory(history.history);
    renderFeed(feed.recommendations);
    const clicks = history.history.length;
    status(user + ": " + clicks + (clicks === 1 ? " click" : " clicks"));
  } catch (error) { status("error: " + error.message); }
}

async function click(newsId, title) {
  try {
    await api("POST", "/users/" + encodeURIComponent(state.user) + "/clicks", { news_id: newsId });
    await load(state.user, true);
    const changed = document.querySelectorAll("#feed .card.new, #feed .card.moved").length;
    const short = title.length > 80 ? title.slice(0, 77) + "\u2026" : title;
    notice("Read \u201c" + short + "\u201d: added to recent clicks; " + changed + " recommendations new or moved.");
    const first = document.querySelector("#feed .card button");
    if (first) first.focus({ preventScroll: true });
  } catch (error) { status("error: " + error.message); }
}

// A fresh service has no readers to sample: show what a new reader would get, and say what to do.
async function welcome() {
  const user = newReaderId();
  state.user = user;
  state.previous = [];
  $("user-id").value = user;
  try {
    const feed = await api("GET", "/users/" + encodeURIComponent(user) + "/recommendations?k=12");
    renderHistory([]);
    renderFeed(feed.recommendations);
    status("No readers yet. This is what a new reader, " + user + ", sees: Read a story to start their history, or enter a user id.");
  } catch (error) { status("error: " + error.message); }
}

async function explain(card, newsId, button) {
  const open = card.querySelector(".why");
  if (open) { open.remove(); button.setAttribute("aria-expanded", "false"); return; }
  try {
    const data = await api("GET", "/users/" + encodeURIComponent(state.user) + "/explanations?news_id=" + encodeURIComponent(newsId));
    const box = element("div", { class: "why" });
    if (!data.history.length) box.append("No clicks yet: recommended for its popularity.");
    else {
      box.append("Your clicks that weigh most:");
      const list = element("ol");
      for (const row of data.history) list.append(element("li", {}, (row.title || row.news_id) + " (weight " + (100 * row.weight).toFixed(0) + "%, similarity " + row.similarity.toFixed(2) + ")"));
      box.append(list);
    }
    card.append(box);
    button.setAttribute("aria-expanded", "true");
  } catch (error) { status("error: " + error.message); }
}

async function start() {
  const config = await api("GET", "/web/config").catch(() => ({ demo: false, users: [] }));
  state.demo = config.demo;
  $("token-form").hidden = config.demo || Boolean(state.token);
  const samples = $("samples");
  for (const user of config.users || []) {
    const button = element("button", { type: "button" }, clean(user));
    button.addEventListener("click", () => load(user));
    samples.append(button);
  }
  if (!(config.users || []).length && (config.demo || state.token)) { await welcome(); return; }
  status(config.demo ? "demo mode: choose a user" : "choose a user");
}

$("user-form").addEventListener("submit", (event) => { event.preventDefault(); const user = $("user-id").value.trim(); if (user) load(user); });
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("mmnewsrec-token", state.token);  // this tab only, never in the URL
  $("token-form").hidden = true;
  if (state.user) load(state.user);
});
start();
