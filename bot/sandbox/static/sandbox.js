// guardrail sandbox page: renders what the simulated Slack holds and sends people's actions to the
// sandbox backend, which signs them and delivers them to the bot as Slack would. No framework.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;
let me = localStorage.getItem("sandbox-user") || "";
let current = "C0GENERAL";
let thread = null; // ts of the open thread's parent
const seen = {};   // channel id -> number of messages seen

// -- text -------------------------------------------------------------------------------------

function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fmtDate(epoch, format, fallback) {
  const d = new Date(epoch * 1000);
  if (isNaN(d)) return esc(fallback);
  const dateOpts = {
    date_num: { year: "numeric", month: "2-digit", day: "2-digit" },
    date: { year: "numeric", month: "long", day: "numeric" },
    date_short: { year: "numeric", month: "short", day: "numeric" },
    date_long: { weekday: "long", year: "numeric", month: "long", day: "numeric" },
    date_pretty: { year: "numeric", month: "long", day: "numeric" },
    date_short_pretty: { year: "numeric", month: "short", day: "numeric" },
    date_long_pretty: { weekday: "long", year: "numeric", month: "long", day: "numeric" },
  };
  const text = format.replace(/\{(\w+)\}/g, (m, token) => {
    if (token === "time") return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    if (token === "time_secs") return d.toLocaleTimeString();
    if (token === "ago") {
      const mins = Math.round((Date.now() - d) / 60000);
      return mins >= 0 ? `${mins} minutes ago` : `in ${-mins} minutes`;
    }
    if (token.endsWith("_pretty")) {
      const today = new Date(); const day = 86400000;
      const same = (a, b) => a.toDateString() === b.toDateString();
      if (same(d, today)) return "Today";
      if (same(d, new Date(today - day))) return "Yesterday";
      if (same(d, new Date(+today + day))) return "Tomorrow";
    }
    return dateOpts[token] ? d.toLocaleDateString(undefined, dateOpts[token]) : m;
  });
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return `<time datetime="${d.toISOString()}" title="${esc(zone)}">${esc(text)}</time>`;
}

function special(inner) {
  const [target, label] = inner.split("|", 2).concat([undefined]).slice(0, 2);
  const names = state.names;
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return `<span class="mention">@${esc(label || names.users[id] || id)}</span>`;
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    return `<span class="mention">#${esc(label || names.channels[id] || id)}</span>`;
  }
  if (target.startsWith("!subteam^")) {
    const id = target.slice(9);
    return `<span class="mention">${esc(label || "@" + (names.groups[id] || id))}</span>`;
  }
  if (target.startsWith("!date^")) {
    const parts = target.split("^");
    return fmtDate(Number(parts[1]), parts[2] || "{date_short_pretty}", label || "");
  }
  if (target.startsWith("!")) return `<span class="mention">@${esc(target.slice(1))}</span>`;
  const href = target.replace(/&amp;/g, "&");
  return `<a href="${esc(href)}" target="_blank" rel="noopener">${esc(label || href)}</a>`;
}

// The emoji shortcodes guardrail's messages use (Slack shows them as pictures); others stay as typed.
const EMOJI = {
  grey_question: "❔", hourglass: "⌛", large_green_circle: "🟢", large_yellow_circle: "🟡", lock: "🔒",
  no_entry: "⛔", package: "📦", red_circle: "🔴", rocket: "🚀", rotating_light: "🚨", snowflake: "❄️",
  sunny: "☀️", warning: "⚠️", white_check_mark: "✅", x: "❌", fire: "🔥", eyes: "👀",
};

// Slack mrkdwn (already escaped by the sender for & < >) to HTML.
function mrkdwn(text) {
  if (!text) return "";
  const blocks = [];
  let s = String(text).replace(/```([\s\S]*?)```/g, (m, code) => { blocks.push(`<pre>${code}</pre>`); return `\u0000${blocks.length - 1}\u0000`; });
  s = s.replace(/"/g, "&quot;");
  s = s.replace(/<([^<>]+)>/g, (m, inner) => { blocks.push(special(inner.replace(/&quot;/g, '"'))); return `\u0000${blocks.length - 1}\u0000`; });
  s = s.replace(/`([^`\n]+)`/g, "<code>$1</code>");
  s = s.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m);
  s = s.replace(/(^|[\s(>])\*([^*\n]+)\*(?=$|[\s.,:;!?)<])/g, "$1<b>$2</b>");
  s = s.replace(/(^|[\s(>])_([^_\n]+)_(?=$|[\s.,:;!?)<])/g, "$1<i>$2</i>");
  s = s.replace(/(^|[\s(>])~([^~\n]+)~(?=$|[\s.,:;!?)<])/g, "$1<s>$2</s>");
  s = s.replace(/^&gt; ?(.*)$/gm, "<blockquote>$1</blockquote>");
  s = s.replace(/\n/g, "<br>");
  return s.replace(/\u0000(\d+)\u0000/g, (m, i) => blocks[Number(i)]);
}

function textObj(t) {
  if (!t) return "";
  return t.type === "mrkdwn" ? mrkdwn(t.text) : esc(t.text);
}

// -- Block Kit --------------------------------------------------------------------------------

function button(el, where) {
  const style = el.style ? ` ${el.style}` : "";
  const data = `data-action="${esc(el.action_id)}" data-channel="${esc(where.channel)}" data-ts="${esc(where.ts)}"`;
  const confirm = el.confirm ? ` data-confirm="${esc(JSON.stringify(el.confirm))}"` : "";
  return `<button type="button" class="sbtn${style}" ${data}${confirm}>${esc(el.text ? el.text.text : el.action_id)}</button>`;
}

function element(el, where) {
  if (el.type === "button") return button(el, where);
  if (el.type === "image") return `<img src="${esc(el.image_url)}" alt="${esc(el.alt_text || "")}" width="20">`;
  return `<span class="note">[${esc(el.type)}]</span>`;
}

function renderBlocks(blocks, where) {
  return (blocks || []).map((b) => {
    switch (b.type) {
      case "header": return `<div class="block block-header">${textObj(b.text)}</div>`;
      case "section": {
        const fields = b.fields ? `<div class="fields">${b.fields.map((f) => `<div>${textObj(f)}</div>`).join("")}</div>` : "";
        const acc = b.accessory ? `<div>${element(b.accessory, where)}</div>` : "";
        return `<div class="block block-section">${textObj(b.text)}${fields}${acc}</div>`;
      }
      case "context": return `<div class="block block-context">${b.elements.map((e) => e.type === "image" ? element(e, where) : textObj(e)).join(" ")}</div>`;
      case "divider": return `<hr class="block block-divider">`;
      case "actions": return `<div class="block block-actions">${b.elements.map((e) => element(e, where)).join("")}</div>`;
      case "rich_text": return `<div class="block">${mrkdwn(richText(b))}</div>`;
      default: return `<div class="block note">[${esc(b.type)} block]</div>`;
    }
  }).join("");
}

function richText(block) {
  return (block.elements || []).map((section) => (section.elements || []).map((e) => e.text || (e.user_id ? `<@${e.user_id}>` : "")).join("")).join("\n");
}

function messageHtml(m, channel, inThread) {
  const bot = !!m.bot_id;
  const name = bot ? "guardrail" : (state.names.users[m.user] || m.user);
  const when = new Date(Number(m.at || m.ts) * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const where = { channel: channel, ts: m.ts };
  const content = m.blocks && m.blocks.length ? renderBlocks(m.blocks, where) : mrkdwn(m.text);
  const only = m.ephemeral ? `<div class="only-you">👁 Only visible to you</div>` : "";
  const edited = m.edited ? ` <span class="edited">(edited)</span>` : "";
  const replies = !inThread && m.reply_count ? `<button type="button" class="replies" data-thread="${esc(m.ts)}">${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}</button>` : "";
  return `<div class="msg${m.ephemeral ? " ephemeral" : ""}" data-ts="${esc(m.ts)}">
    <div class="avatar${bot ? " bot" : ""}">${esc(name[0].toUpperCase())}</div>
    <div class="body">${only}<span class="author">${esc(name)}</span>${bot ? '<span class="app-tag">APP</span>' : ""}<span class="ts">${when}</span>${edited}
      <div class="content">${content}</div>${replies}</div></div>`;
}

// -- rendering --------------------------------------------------------------------------------

function channelOf(id) { return state.channels.find((c) => c.id === id); }

function render() {
  $("user").innerHTML = state.people.map((p) => `<option value="${esc(p.id)}"${p.id === me ? " selected" : ""}>${esc(p.name)} (${p.responder ? "responder" : "not a responder"})</option>`).join("");
  if (!channelOf(current)) current = state.channels[0].id;
  $("channels").innerHTML = state.channels.map((c) => {
    const unread = c.id !== current && c.messages.length > (seen[c.id] || 0);
    return `<a href="#" data-channel="${esc(c.id)}" class="${c.id === current ? "active" : ""}${unread ? " unread" : ""}"># ${esc(c.name)}</a>`;
  }).join("");
  const ch = channelOf(current);
  seen[current] = ch.messages.length;
  $("channel-header").textContent = `# ${ch.name}`;
  const top = ch.messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts);
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.innerHTML = top.map((m) => messageHtml(m, ch.id, false)).join("");
  if (atBottom) box.scrollTop = box.scrollHeight;
  renderThread(ch);
  renderHints();
  renderStopwatch();
  renderDrills();
  renderView();
}

function renderThread(ch) {
  if (!thread) { $("thread").hidden = true; return; }
  const msgs = ch.messages.filter((m) => m.ts === thread || m.thread_ts === thread);
  if (!msgs.length) { thread = null; $("thread").hidden = true; return; }
  $("thread").hidden = false;
  $("thread-messages").innerHTML = msgs.map((m) => messageHtml(m, ch.id, true)).join("");
}

function renderHints() {
  $("commands").innerHTML = state.commands.map((c) => `<option value="${esc(c.command)} ">${esc(c.description)}</option>`).join("");
  const text = $("composer-input").value;
  const cmd = state.commands.find((c) => text.split(" ")[0] === c.command);
  $("hint").textContent = cmd ? `${cmd.command} ${cmd.usage_hint}` : (text.startsWith("/") ? state.commands.map((c) => c.command).join("  ") : "");
}

let tick = null;
function renderStopwatch() {
  const w = state.stopwatch;
  const secs = w.started == null ? 0 : ((w.stopped || Date.now() / 1000) - w.started);
  const status = w.started == null ? `starts when someone asks "are we down?"` : (w.stopped ? `stopped: ${esc(w.step)} succeeded` : `running until ${esc(w.step || "verify")} succeeds`);
  const notice = state.notice ? `<div class="notice">${esc(state.notice)}</div>` : "";
  $("stopwatch").innerHTML = `${notice}<h2>Stopwatch</h2><div class="time" id="stopwatch-time">${secs.toFixed(1)} s</div>
    <div>${status}</div><div>clicks: <b id="clicks">${w.clicks}</b></div>`;
  clearInterval(tick);
  if (w.started != null && !w.stopped) tick = setInterval(() => {
    $("stopwatch-time").textContent = `${(Date.now() / 1000 - w.started).toFixed(1)} s`;
  }, 100);
}

function renderDrills() {
  const d = state.drills;
  const row = (kind, item) => `<div class="drill-row" data-kind="${kind}" data-name="${esc(item.name)}"><b>${esc(item.name)}</b>
    ${item.check ? `<span class="note">${esc(item.check)} · ${esc(item.note)}</span>` : ""}
    <div class="states">${item.states.map((s) => `<button type="button" class="${s === item.state ? "on" : ""}" data-state="${esc(s)}">${esc(s)}</button>`).join("")}</div></div>`;
  const heroku = Object.entries(d.heroku).map(([app, f]) => `<div class="note">Heroku ${esc(app)}: ${Object.entries(f).map(([p, q]) => `${esc(p)}=${q}`).join(", ")}</div>`).join("");
  const kube = Object.entries(d.kubernetes).map(([name, r]) => `<div class="note">Kubernetes ${esc(name)}: ${r} replicas</div>`).join("");
  const redis = d.redis.problem ? `<div class="note">${esc(d.redis.problem)}</div>` : `<button type="button" class="action" id="seed-jobs">Make 5 jobs fail (RQ)</button>`;
  $("drills").innerHTML = `<h2>Drills</h2>
    <div class="note">Services</div>${d.services.map((s) => row("service", s)).join("")}
    <div class="note">Deploy targets</div>${d.targets.map((t) => row("target", t)).join("")}
    ${heroku}${kube}${redis}
    ${state.demo ? `<button type="button" class="action" id="demo-day">Start the demo-day drill</button>` : ""}
    <details><summary class="note">Drill values for \${VAR}s</summary>${Object.entries(d.variables).map(([k, v]) => `<div class="note">\${${esc(k)}} = ${esc(v)}</div>`).join("")}</details>`;
}

// -- modals (views) -------------------------------------------------------------------------------

let shownView = null;
function renderView() {
  const v = state.view;
  if (!v) { if (shownView) { $("overlay").hidden = true; $("overlay").innerHTML = ""; } shownView = null; return; }
  const key = v.id + JSON.stringify(v.errors) + v.hash;
  if (shownView === key) return;
  shownView = key;
  const inputs = (v.blocks || []).map((b) => {
    if (b.type !== "input") return renderBlocks([b], { channel: "", ts: "" });
    const e = b.element; const id = `${b.block_id}|${e.action_id}`;
    let control;
    if (e.type === "static_select") {
      control = `<select data-field="${esc(id)}" data-type="static_select">${(e.options || []).map((o) => `<option value="${esc(o.value)}"${e.initial_option && e.initial_option.value === o.value ? " selected" : ""}>${esc(o.text.text)}</option>`).join("")}</select>`;
    } else if (e.type === "datepicker") {
      control = `<input type="date" data-field="${esc(id)}" data-type="datepicker" value="${esc(e.initial_date || "")}">`;
    } else if (e.type === "timepicker") {
      control = `<input type="time" data-field="${esc(id)}" data-type="timepicker" value="${esc(e.initial_time || "")}">`;
    } else {
      const ph = e.placeholder ? esc(e.placeholder.text) : "";
      control = e.multiline ? `<textarea data-field="${esc(id)}" data-type="plain_text_input" placeholder="${ph}">${esc(e.initial_value || "")}</textarea>`
        : `<input data-field="${esc(id)}" data-type="plain_text_input" placeholder="${ph}" value="${esc(e.initial_value || "")}">`;
    }
    const err = v.errors[b.block_id] ? `<div class="field-error">${esc(v.errors[b.block_id])}</div>` : "";
    return `<div class="input-block"><label>${esc(b.label.text)}</label>${control}${err}</div>`;
  }).join("");
  $("overlay").innerHTML = `<div class="dialog" role="dialog" aria-label="${esc(v.title ? v.title.text : "")}">
    <h3>${esc(v.title ? v.title.text : "")}</h3><div class="content">${inputs}</div>
    <div class="buttons"><button type="button" class="sbtn" id="view-close">${esc(v.close ? v.close.text : "Cancel")}</button>
    ${v.submit ? `<button type="button" class="sbtn primary" id="view-submit">${esc(v.submit.text)}</button>` : ""}</div></div>`;
  $("overlay").hidden = false;
  $("view-close").onclick = () => post("/sandbox/close", { view_id: v.id });
  if (v.submit) $("view-submit").onclick = () => {
    const values = {};
    for (const el of $("overlay").querySelectorAll("[data-field]")) {
      const [block, action] = el.dataset.field.split("|");
      const type = el.dataset.type;
      let entry = { type: type, value: el.value || null };
      if (type === "static_select") entry = { type: type, selected_option: el.value ? { value: el.value, text: { type: "plain_text", text: el.selectedOptions[0].text } } : null };
      if (type === "datepicker") entry = { type: type, selected_date: el.value || null };
      if (type === "timepicker") entry = { type: type, selected_time: el.value || null };
      values[block] = Object.assign(values[block] || {}, { [action]: entry });
    }
    shownView = null;
    post("/sandbox/submit", { user: me, view_id: v.id, values: values });
  };
}

function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const overlay = $("overlay");
    overlay.innerHTML = `<div class="dialog" role="alertdialog" aria-label="${esc(confirm.title.text)}"><h3>${esc(confirm.title.text)}</h3>
      <div class="content">${textObj(confirm.text)}</div><div class="buttons">
      <button type="button" class="sbtn" id="confirm-deny">${esc(confirm.deny ? confirm.deny.text : "Cancel")}</button>
      <button type="button" class="sbtn ${confirm.style === "danger" ? "danger" : "primary"}" id="confirm-ok">${esc(confirm.confirm ? confirm.confirm.text : "OK")}</button></div></div>`;
    overlay.hidden = false;
    const done = (ok) => { overlay.hidden = true; overlay.innerHTML = ""; shownView = null; resolve(ok); };
    $("confirm-ok").onclick = () => done(true);
    $("confirm-deny").onclick = () => done(false);
  });
}

// -- actions ------------------------------------------------------------------------------------

function toast(text) {
  const t = $("toast"); t.textContent = text; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) toast(answer.error || `HTTP ${r.status}`);
  else if (answer.status && answer.status >= 400) toast(`the bot answered HTTP ${answer.status}`);
  await refresh();
  return answer;
}

document.addEventListener("click", async (ev) => {
  const t = ev.target.closest("button, a");
  if (!t) return;
  if (t.dataset.channel && t.tagName === "A") { ev.preventDefault(); current = t.dataset.channel; thread = null; render(); return; }
  if (t.dataset.thread) { thread = t.dataset.thread; render(); return; }
  if (t.dataset.action) {
    if (t.dataset.confirm && !(await confirmDialog(JSON.parse(t.dataset.confirm)))) return;
    t.disabled = true;
    await post("/sandbox/click", { user: me, channel: t.dataset.channel, ts: t.dataset.ts, action_id: t.dataset.action });
    return;
  }
  const row = t.closest(".drill-row");
  if (row && t.dataset.state) { await post("/sandbox/drill", { kind: row.dataset.kind, name: row.dataset.name, state: t.dataset.state }); return; }
  if (t.id === "seed-jobs") { await post("/sandbox/drill", { kind: "failed-jobs", count: 5 }); return; }
  if (t.id === "demo-day") { t.disabled = true; await post("/sandbox/drill", { kind: "demo-day" }); return; }
  if (t.id === "close-thread") { thread = null; render(); }
});

$("composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("composer-input"); const text = input.value;
  if (!text.trim()) return;
  input.value = ""; renderHints();
  await post("/sandbox/say", { user: me, channel: current, text: text });
});
$("thread-composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("thread-input"); const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  await post("/sandbox/say", { user: me, channel: current, text: text, thread_ts: thread });
});
$("composer-input").addEventListener("input", renderHints);
$("user").addEventListener("change", (ev) => { me = ev.target.value; localStorage.setItem("sandbox-user", me); shownView = null; refresh(); });

async function refresh() {
  const r = await fetch(`/sandbox/state?user=${encodeURIComponent(me)}`);
  if (!r.ok) { localStorage.removeItem("sandbox-user"); me = ""; return refresh(); }
  state = await r.json();
  if (!me) me = state.me;
  render();
  document.body.dataset.version = state.version;
}

refresh().then(() => {
  const events = new EventSource("/sandbox/events");
  events.onmessage = (ev) => { if (!state || Number(ev.data) !== state.version) refresh(); };
});
