import { createHash } from 'node:crypto';

/**
 * @internal The admin dashboard: one self-contained page (no build step, no external assets)
 * over the JSON API next to it. What an operator needs at a glance: the counts and the relay's
 * lag, the messages in doubt (HALF, parked, DEAD) with their check history, and the actions.
 */
export function dashboardPage(auth: DashboardAuth = 'browser'): string {
  return auth === 'bearer' ? PAGE.replace('<body>', '<body data-auth="bearer">') : PAGE;
}

/**
 * How the dashboard's own requests authenticate: `'browser'`, with what the browser sends by
 * itself (a session cookie, HTTP basic, a client certificate); `'bearer'`, with an
 * `Authorization: Bearer` token the operator enters (or a link of the application provides, in the
 * URL's fragment `#token=...`), kept in the tab's sessionStorage.
 */
export type DashboardAuth = 'browser' | 'bearer';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Transactional messages</title>
<style>
  :root { font: 14px/1.4 system-ui, sans-serif; color: #1d2733; background: #f5f7fa; }
  body { margin: 0; }
  [hidden] { display: none !important; }
  #auth { padding: 12px 20px 0; margin: 0; }
  header label { font-size: 13px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 12px; margin-bottom: 16px; }
  .chart { background: #fff; border-radius: 6px; padding: 8px 12px; box-shadow: 0 1px 2px #0002; }
  .chart .title { display: flex; justify-content: space-between; font-size: 13px; color: #5a6675; }
  .chart .title b { color: #1d2733; }
  .chart svg { width: 100%; height: 64px; display: block; }
  .chart .legend { font-size: 11px; color: #5a6675; } .chart .legend i { display: inline-block; width: 8px; height: 8px; margin: 0 3px 0 8px; }
  header { background: #1d2733; color: #fff; padding: 12px 20px; display: flex; align-items: center; gap: 16px; }
  header h1 { font-size: 17px; margin: 0; flex: 1; }
  main { padding: 16px 20px; }
  .cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 16px; }
  .card { background: #fff; border-radius: 6px; padding: 10px 14px; min-width: 110px; box-shadow: 0 1px 2px #0002; }
  .card b { display: block; font-size: 22px; }
  .card.alert b { color: #c0392b; }
  .bar { display: flex; gap: 8px; align-items: center; margin-bottom: 10px; flex-wrap: wrap; }
  select, input, button { font: inherit; padding: 5px 8px; border: 1px solid #c5cdd8; border-radius: 4px; background: #fff; }
  button { cursor: pointer; background: #2d6cdf; color: #fff; border-color: #2d6cdf; }
  button.secondary { background: #fff; color: #1d2733; border-color: #c5cdd8; }
  button.danger { background: #c0392b; border-color: #c0392b; }
  table { width: 100%; border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px #0002; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e6eaf0; vertical-align: top; }
  th { background: #eef2f7; font-weight: 600; }
  tbody tr { cursor: pointer; }
  tbody tr:hover { background: #f0f5ff; }
  .status { font-size: 12px; padding: 1px 6px; border-radius: 10px; background: #e6eaf0; white-space: nowrap; }
  .status.DEAD { background: #fbe3e0; color: #a02c20; } .status.CHECK_EXHAUSTED { background: #fff1d6; color: #8a5a00; }
  .status.HALF { background: #e4efff; color: #1f4f9c; } .status.COMMITTED { background: #e2f5e9; color: #1e6b3a; }
  .status.DELAYED { background: #efe7fb; color: #5b3a94; }
  .mono { font-family: ui-monospace, monospace; font-size: 12px; }
  #detail { margin-top: 16px; background: #fff; padding: 12px 16px; border-radius: 6px; box-shadow: 0 1px 2px #0002; }
  #detail h2 { font-size: 15px; margin: 0 0 8px; }
  #detail dl { display: grid; grid-template-columns: 150px 1fr; gap: 2px 10px; margin: 0 0 10px; }
  #detail dt { color: #5a6675; } #detail dd { margin: 0; word-break: break-all; }
  pre { background: #f5f7fa; padding: 8px; border-radius: 4px; overflow: auto; max-height: 200px; margin: 0 0 10px; }
  #notice { min-height: 20px; margin: 0 0 10px; }
  #notice.error { color: #c0392b; } #notice.ok { color: #1e6b3a; }
  .empty { color: #5a6675; padding: 14px; text-align: center; }
</style>
</head>
<body>
<header><h1>Transactional messages</h1><label><input type="checkbox" id="auto" data-testid="auto" checked> Auto-refresh (5 s)</label><button class="secondary" id="forget" data-testid="forget" hidden>Forget token</button><button class="secondary" id="refresh" data-testid="refresh">Refresh</button></header>
<form id="auth" data-testid="auth" class="bar" hidden>
  <label>This API needs a bearer token <input id="token" type="password" autocomplete="off" data-testid="token" placeholder="token"></label>
  <button type="submit" data-testid="use-token">Use it</button>
  <span>kept in this tab only (sessionStorage)</span>
</form>
<main>
  <div class="cards" id="cards" data-testid="summary"></div>
  <div class="charts" id="charts" data-testid="charts"></div>
  <div id="notice" data-testid="notice"></div>
  <div class="bar">
    <label>Show <select id="view" data-testid="view">
      <option value="HALF,CHECK_EXHAUSTED,DEAD">In doubt (half, parked, dead)</option>
      <option value="HALF">Half</option>
      <option value="CHECK_EXHAUSTED">Parked</option>
      <option value="DEAD">Dead</option>
      <option value="COMMITTED">Waiting to be published</option>
      <option value="DELAYED">Delayed (not due yet)</option>
      <option value="DISCARDED">Discarded</option>
    </select></label>
    <label>Topic <input id="topic" placeholder="any" data-testid="topic"></label>
    <label>Key <input id="key" placeholder="any" data-testid="key"></label>
    <button class="secondary" id="apply" data-testid="apply">Apply</button>
    <label>Message id <input id="find" placeholder="01…" data-testid="find" size="38"></label>
    <button class="secondary" id="find-go" data-testid="find-go">Open</button>
    <button class="danger" id="replay-all" data-testid="replay-all">Replay every DEAD message shown</button>
  </div>
  <table><thead><tr><th>Id</th><th>Status</th><th>Topic</th><th>Key</th><th>Stored</th><th>Due</th><th>Checks</th><th>Attempts</th><th>Last error</th></tr></thead>
  <tbody id="rows" data-testid="rows"></tbody></table>
  <div id="more"></div>
  <section id="detail" data-testid="detail" hidden></section>
</main>
<script>
const api = location.pathname.replace(/\\/+$/, '') + '/api';
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const due = (iso) => { if (!iso) return '–'; const s = (Date.parse(iso) - Date.now()) / 1000; if (s <= 0) return 'due'; return 'in ' + (s < 120 ? Math.round(s) + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : s < 172800 ? Math.round(s / 3600) + ' h' : Math.round(s / 86400) + ' d'); };
const age = (iso) => { const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000); return s < 120 ? Math.round(s) + ' s ago' : s < 7200 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago'; };
const ms = (n) => n < 1000 ? n + ' ms' : n < 120000 ? (n / 1000).toFixed(1) + ' s' : Math.round(n / 60000) + ' min';

// Bearer mode (data-auth="bearer"): the token comes from the operator (the form) or from a link of
// the application (#token=..., taken out of the address at once); kept for this tab only.
const bearer = document.body.dataset.auth === 'bearer';
const TOKEN_KEY = 'tm-dashboard-token:' + api;
if (bearer && location.hash.startsWith('#token=')) {
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice('#token='.length)));
  history.replaceState(null, '', location.pathname + location.search);
}
const token = () => (bearer ? sessionStorage.getItem(TOKEN_KEY) : null);
$('forget').hidden = !token();

async function call(method, path, body) {
  // Every POST carries a JSON body: the API refuses state changes without Content-Type: application/json.
  const post = method !== 'GET';
  const headers = { ...(post ? { 'content-type': 'application/json' } : {}), ...(token() ? { authorization: 'Bearer ' + token() } : {}) };
  const response = await fetch(api + path, { method, headers, body: post ? JSON.stringify(body ?? {}) : undefined });
  const data = await response.json().catch(() => ({}));
  if (bearer && (response.status === 401 || response.status === 403)) {
    $('auth').hidden = false;
    throw new Error(token() ? 'The token was refused (' + response.status + '): enter another one.' : 'Enter the API token to see the messages.');
  }
  if (!response.ok) throw new Error(data.message || response.status + ' ' + response.statusText);
  $('auth').hidden = true;
  return data;
}
function notice(text, kind) { const n = $('notice'); n.textContent = text; n.className = kind || ''; }

async function loadSummary() {
  const s = await call('GET', '/summary');
  const card = (label, value, alert, id) => '<div class="card' + (alert ? ' alert' : '') + '" data-testid="count-' + id + '">' + label + '<b>' + value + '</b></div>';
  $('cards').innerHTML = card('Half', s.counts.HALF, false, 'HALF') + card('Waiting to publish', s.counts.COMMITTED, false, 'COMMITTED') +
    card('Delayed', s.counts.DELAYED, false, 'DELAYED') +
    card('Parked', s.counts.CHECK_EXHAUSTED, s.counts.CHECK_EXHAUSTED > 0, 'CHECK_EXHAUSTED') + card('Dead', s.counts.DEAD, s.counts.DEAD > 0, 'DEAD') +
    card('Discarded', s.counts.DISCARDED, false, 'DISCARDED') + card('Relay lag', ms(s.relayLagMs), s.relayLagMs > 60000, 'lag') + card('Oldest half', ms(s.oldestHalfAgeMs), false, 'half-age');
}

let after;
let pages = 0;
function filter() {
  const f = { status: $('view').value };
  if ($('topic').value.trim()) f.topic = $('topic').value.trim();
  if ($('key').value.trim()) f.key = $('key').value.trim();
  return f;
}

// Charts over the last hour (slices of 10 s): an SVG line per series, no library.
const COLORS = ['#2d6cdf', '#1e8a4c', '#b8860b', '#8e44ad', '#c0392b', '#5a6675'];
function chart(id, title, series, format) {
  const n = Math.max(2, series[0] ? series[0].values.length : 2);
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const x = (i) => (i * 300) / (n - 1);
  const y = (v) => 60 - (v / max) * 56;
  const lines = series.map((s, k) => {
    const points = s.values.map((v, i) => (v === null ? null : x(i).toFixed(1) + ',' + y(v).toFixed(1))).filter(Boolean).join(' ');
    return '<polyline fill="none" stroke-width="1.5" stroke="' + COLORS[k % COLORS.length] + '" points="' + points + '" data-series="' + esc(s.name) + '"></polyline>';
  }).join('');
  const latest = series.map((s) => s.values.filter((v) => v !== null).at(-1) ?? 0).reduce((a, b) => a + b, 0);
  const legend = series.length > 1 ? '<div class="legend">' + series.map((s, k) => '<i style="background:' + COLORS[k % COLORS.length] + '"></i>' + esc(s.name)).join('') + '</div>' : '';
  return '<div class="chart" data-testid="chart-' + id + '"><div class="title">' + title + '<b data-testid="chart-' + id + '-latest">' + format(latest) + '</b></div>' +
    '<svg viewBox="0 0 300 62" preserveAspectRatio="none">' + lines + '</svg>' + legend + '</div>';
}
async function loadActivity() {
  const { buckets } = await call('GET', '/activity');
  const totals = {};
  for (const b of buckets) for (const [t, c] of Object.entries(b.published)) totals[t] = (totals[t] || 0) + c;
  const topics = Object.keys(totals).sort((a, b) => totals[b] - totals[a]);
  const shown = topics.slice(0, 5);
  const published = shown.map((t) => ({ name: t, values: buckets.map((b) => b.published[t] || 0) }));
  if (topics.length > 5) published.push({ name: 'other topics', values: buckets.map((b) => topics.slice(5).reduce((sum, t) => sum + (b.published[t] || 0), 0)) });
  const count = (v) => String(v);
  $('charts').innerHTML =
    chart('published', 'Published per 10 s, by topic', published.length ? published : [{ name: 'none', values: buckets.map(() => 0) }], count) +
    chart('failures', 'Failed attempts per 10 s', [{ name: 'failed', values: buckets.map((b) => b.failed) }, { name: 'DEAD', values: buckets.map((b) => b.dead) }], count) +
    chart('lag', 'Relay lag', [{ name: 'lag', values: buckets.map((b) => b.relayLagMs) }], ms) +
    chart('half', 'Half messages waiting', [{ name: 'half', values: buckets.map((b) => b.halfWaiting) }], count);
}

async function loadRows(append) {
  const q = new URLSearchParams({ ...filter(), limit: '50', ...(append && after ? { after } : {}) });
  const page = await call('GET', '/messages?' + q);
  after = page.next;
  pages = append ? pages + 1 : 1;
  const html = page.messages.map((m) => '<tr data-id="' + esc(m.id) + '" data-testid="row"><td class="mono">' + esc(m.id) + '</td><td><span class="status ' + esc(m.status) + '">' + esc(m.status) +
    '</span></td><td>' + esc(m.topic) + '</td><td>' + esc(m.key ?? '–') + '</td><td title="' + esc(m.createdAt) + '">' + age(m.createdAt) + '</td><td title="' + esc(m.deliverAt ?? '') + '" data-testid="due">' + due(m.deliverAt) + '</td><td>' + m.checkCount +
    '</td><td>' + m.deliveryAttempts + '</td><td>' + esc(m.lastError ?? '') + '</td></tr>').join('');
  if (append) $('rows').insertAdjacentHTML('beforeend', html); else $('rows').innerHTML = html || '<tr><td colspan="9" class="empty">Nothing here.</td></tr>';
  $('more').innerHTML = after ? '<button class="secondary" id="load-more">More</button>' : '';
  if (after) $('load-more').onclick = () => loadRows(true).catch((e) => notice(e.message, 'error'));
}

// What each action does, to the business side too, asked before it runs.
const CONFIRM = {
  commit: (m) => 'Commit message ' + m.id + '?\\n\\nIt will be published to ' + m.topic + ' and its consumers will act on it (ship, credit, ...). ' +
    'This does not change your business data: commit only if the business transaction behind it really committed (look it up first), or consumers act on something that did not happen.',
  rollback: (m) => 'Roll back message ' + m.id + '?\\n\\nIt will never be published. If the business transaction behind it did commit, its consumers will never hear of it.',
  replay: (m) => 'Replay message ' + m.id + '?\\n\\nIt is published to ' + m.topic + ' again, and its consumers act on it.',
  discard: (m) => 'Discard message ' + m.id + '?\\n\\nIt will never be published, and the later messages of its key go on without it.',
};

async function openMessage(id) {
  const { message: m, checks } = await call('GET', '/messages/' + encodeURIComponent(id));
  const actions = [];
  if (m.status === 'HALF' || m.status === 'CHECK_EXHAUSTED') actions.push(['commit', 'Commit'], ['rollback', 'Roll back']);
  if (m.status === 'DEAD') actions.push(['replay', 'Replay'], ['discard', 'Discard']);
  const field = (k, v) => '<dt>' + k + '</dt><dd>' + esc(v ?? '–') + '</dd>';
  $('detail').hidden = false;
  $('detail').innerHTML = '<h2>Message <span class="mono" data-testid="detail-id">' + esc(m.id) + '</span> <span class="status ' + esc(m.status) + '" data-testid="detail-status">' + esc(m.status) + '</span></h2>' +
    '<dl>' + field('Topic', m.topic) + field('Key', m.key) + field('Tags', (m.tags || []).join(', ')) + field('Producer group', m.producerGroup) + field('Stored', m.createdAt) + field('Due', m.deliverAt) +
    field('Next check', m.nextCheckAt) + field('Delivery attempts', m.deliveryAttempts) + field('Last error', m.lastError) + '</dl>' +
    '<pre class="mono" data-testid="detail-body">' + esc(JSON.stringify(m.body, null, 2)) + '</pre>' +
    '<h2>Checks (' + checks.length + ')</h2>' + (checks.length ? '<table data-testid="checks"><thead><tr><th>#</th><th>When</th><th>Answer</th><th>Error</th><th>Took</th><th>Checker</th></tr></thead><tbody>' +
      checks.map((c) => '<tr><td>' + c.checkNumber + '</td><td>' + esc(c.checkedAt) + '</td><td>' + esc(c.result) + '</td><td>' + esc(c.error ?? '') + '</td><td>' + c.durationMs + ' ms</td><td class="mono">' + esc(c.checker) + '</td></tr>').join('') +
      '</tbody></table>' : '<p class="empty">Never checked.</p>') +
    '<div class="bar" style="margin-top:10px">' + actions.map(([a, label]) => '<button data-action="' + a + '" data-testid="action-' + a + '"' + (a === 'rollback' || a === 'discard' ? ' class="danger"' : '') + '>' + label + '</button>').join('') + '</div>';
  for (const button of $('detail').querySelectorAll('button[data-action]')) {
    button.onclick = async () => {
      if (!confirm(CONFIRM[button.dataset.action](m))) return;
      try {
        const done = await call('POST', '/messages/' + encodeURIComponent(m.id) + '/' + button.dataset.action);
        notice('Message ' + m.id + ': ' + done.done, 'ok');
        await refresh(); await openMessage(m.id);
      } catch (e) { notice(e.message, 'error'); }
    };
  }
}

async function refresh() { await Promise.all([loadSummary(), loadRows(false), loadActivity()]); }
// Auto-refresh: the counts, the charts, and the list while it shows its first page only (a list
// paged further stays as the operator left it); never while the tab is hidden.
setInterval(() => {
  if (!$('auto').checked || document.hidden || !$('auth').hidden) return;
  Promise.all([loadSummary(), loadActivity(), pages <= 1 ? loadRows(false) : null]).catch((e) => notice(e.message, 'error'));
}, 5000);
$('find-go').onclick = () => {
  const id = $('find').value.trim();
  if (id) openMessage(id).then(() => notice('')).catch((e) => notice(e.message, 'error'));
};
$('auth').onsubmit = (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value);
  $('token').value = '';
  $('forget').hidden = false;
  refresh().then(() => notice('')).catch((e) => notice(e.message, 'error'));
};
$('forget').onclick = () => { sessionStorage.removeItem(TOKEN_KEY); $('forget').hidden = true; location.reload(); };
$('rows').onclick = (event) => { const row = event.target.closest('tr[data-id]'); if (row) openMessage(row.dataset.id).catch((e) => notice(e.message, 'error')); };
$('refresh').onclick = () => refresh().then(() => notice('')).catch((e) => notice(e.message, 'error'));
$('apply').onclick = $('refresh').onclick;
$('view').onchange = $('refresh').onclick;
$('replay-all').onclick = async () => {
  const f0 = filter();
  if (!confirm('Replay every DEAD message' + (f0.topic ? ' of topic ' + f0.topic : '') + '? Each is published again, and under onDead "hold" the later messages of its key follow it.')) return;
  try { const f = filter(); delete f.status; const { replayed } = await call('POST', '/replay-dead', f); notice('Replayed ' + replayed + ' DEAD message(s)', 'ok'); await refresh(); }
  catch (e) { notice(e.message, 'error'); }
};
refresh().catch((e) => notice(e.message, 'error'));
</script>
</body>
</html>
`;

const SCRIPT = PAGE.slice(PAGE.indexOf('<script>') + '<script>'.length, PAGE.indexOf('</script>'));

/**
 * @internal The page's Content-Security-Policy: its one inline script by hash, inline styles, and
 * requests to its own origin only; no plugin, no base or form target, never framed.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
