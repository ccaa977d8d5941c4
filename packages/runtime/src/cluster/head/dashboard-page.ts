// The dashboard the head serves at `/`: one page, no framework, no build step. It polls the head's
// JSON (`/api/status`, `/api/tasks`, `/api/objects`, `/api/actors`) every 2 s with the cookie `?token=` set, and draws tables and
// two small charts (tasks finished per second, store bytes in use) over the last 5 minutes.

/** The page, as served. */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal</title>
<style>
  :root { font: 14px/1.4 system-ui, sans-serif; color: #1c2733; background: #f5f7fa; }
  body { margin: 0; padding: 16px 24px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 15px; margin: 20px 0 6px; }
  .meta { color: #5b6b7c; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px #0002; min-width: 50%; }
  th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid #e3e8ee; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  th { background: #eef2f6; font-weight: 600; }
  .charts { display: flex; gap: 16px; flex-wrap: wrap; }
  .chart { background: #fff; box-shadow: 0 1px 2px #0002; padding: 8px; }
  .chart svg { display: block; }
  .bad { color: #b3261e; }
  pre { margin: 4px 0 0; font-size: 12px; white-space: pre-wrap; color: #5b6b7c; }
  .empty { color: #5b6b7c; font-style: italic; }
</style>
</head>
<body>
<h1>Shoal cluster <span id="cluster" class="meta"></span></h1>
<div id="updated" class="meta">loading…</div>
<div class="charts">
  <div class="chart"><div>tasks finished / s</div><svg id="throughput" width="360" height="90"></svg></div>
  <div class="chart"><div>store bytes in use</div><svg id="store" width="360" height="90"></svg></div>
</div>
<h2>Nodes</h2>
<table id="nodes"><thead><tr><th>node</th><th>host</th><th>CPUs free / total</th><th>other resources</th><th>workers</th><th>queued</th><th>running</th><th>objects</th><th>store used / capacity</th><th>spilled</th><th>seen</th></tr></thead><tbody></tbody></table>
<h2>Tasks by function</h2>
<table id="functions"><thead><tr><th>function</th><th>submitted</th><th>started</th><th>finished</th><th>failed</th><th>mean run</th></tr></thead><tbody></tbody></table>
<h2>Actors</h2>
<table id="actors"><thead><tr><th>actor</th><th>class</th><th>name</th><th>state</th><th>node</th><th>made on</th><th>restarts</th></tr></thead><tbody></tbody></table>
<h2>Largest objects</h2>
<table id="objects"><thead><tr><th>object</th><th>size</th><th>what</th><th>nodes</th><th>held by</th></tr></thead><tbody></tbody></table>
<h2>Recent failures</h2>
<div id="failures"></div>
<div id="unreachable" class="bad"></div>
<script>
const HISTORY_MS = 5 * 60 * 1000;
const history = [];
const text = (value) => String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const bytes = (n) => { const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0; while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + ' ' + units[i]; };
const row = (cells) => '<tr>' + cells.map((cell) => '<td>' + cell + '</td>').join('') + '</tr>';
function fill(id, rows, columns) {
  document.querySelector('#' + id + ' tbody').innerHTML = rows.length ? rows.join('') : '<tr><td class="empty" colspan="' + columns + '">none</td></tr>';
}
function chart(id, points) {
  const svg = document.getElementById(id);
  const w = +svg.getAttribute('width'), h = +svg.getAttribute('height');
  if (points.length < 2) { svg.innerHTML = ''; return; }
  const t0 = points[0][0], t1 = points[points.length - 1][0] || t0 + 1;
  const max = Math.max(1, ...points.map((p) => p[1]));
  const path = points.map((p, i) => (i ? 'L' : 'M') + ((p[0] - t0) / Math.max(1, t1 - t0) * (w - 4) + 2).toFixed(1) + ',' + (h - 14 - p[1] / max * (h - 20)).toFixed(1)).join(' ');
  svg.innerHTML = '<path d="' + path + '" fill="none" stroke="#2f6fdf" stroke-width="1.5"/>' +
    '<text x="2" y="' + (h - 2) + '" font-size="10" fill="#5b6b7c">max ' + text(id === 'store' ? bytes(max) : max.toFixed(1)) + '</text>';
}
async function json(path) {
  const response = await fetch(path, { credentials: 'same-origin' });
  if (!response.ok) throw new Error(path + ': HTTP ' + response.status + (response.status === 401 ? ' (open this page with ?token=TOKEN)' : ''));
  return response.json();
}
async function refresh() {
  try {
    const [status, tasks, objects, actors] = await Promise.all([json('/api/status'), json('/api/tasks'), json('/api/objects'), json('/api/actors')]);
    fill('actors', actors.actors.map((a) => row([text(a.id), text(a.className), text(a.name ?? '–'),
      a.state === 'dead' ? '<span class="bad">dead</span>: ' + text(a.reason ?? '') : text(a.state + (a.detached ? ', detached' : '')), text(a.node ?? '–'), text(a.origin), text(a.restarts)])), 7);
    fill('objects', objects.objects.slice(0, 20).map((o) => row([text(o.id), text(bytes(o.size)),
      text([o.state === 'ready' ? 'object' : o.state, o.inline ? 'inline' : '', o.spilled ? 'spilled' : ''].concat(o.names.map((n) => 'named ' + n)).filter(Boolean).join(', ')),
      text(o.nodes.join(' ')), text(o.holders.map((h) => h.kind + ' ' + h.pid + '@' + h.node).join(', ') || (o.holds + ' hold(s) in the node'))])), 5);
    document.getElementById('cluster').textContent = status.clusterId;
    fill('nodes', status.nodes.map((node) => {
      const others = Object.keys(node.resources).filter((k) => k !== 'CPU').map((k) => k + ' ' + (node.available[k] ?? 0) + '/' + node.resources[k]).join(', ');
      return row([text(node.nodeId), text(node.hostname), text((node.available.CPU ?? 0) + ' / ' + (node.resources.CPU ?? 0)), text(others || '–'), text(node.workers), text(node.queuedTasks), text(node.runningTasks),
        text(node.objects), text(bytes(node.objectBytes) + ' / ' + bytes(node.capacityBytes)), text(bytes(node.spill ? node.spill.spilledBytes : 0)), text((node.lastSeenMs / 1000).toFixed(1) + ' s ago')]);
    }), 11);
    fill('functions', tasks.functions.map((f) => row([text(f.name), text(f.submitted), text(f.started), text(f.finished), f.failed ? '<span class="bad">' + text(f.failed) + '</span>' : '0',
      f.runs ? (f.runSeconds / f.runs * 1000).toFixed(2) + ' ms' : '–'])), 6);
    document.getElementById('failures').innerHTML = tasks.failures.length
      ? tasks.failures.map((f) => '<div><b>' + text(f.name) + '</b> on ' + text(f.node) + ', ' + new Date(f.at).toLocaleTimeString() + ': <span class="bad">' + text(f.error + ': ' + f.message) + '</span><pre>' + text(f.stack || '') + '</pre></div>').join('')
      : '<div class="empty">none</div>';
    document.getElementById('unreachable').textContent = tasks.unreachable.map((u) => 'node ' + u.node + ' did not answer: ' + u.reason).join('; ');
    const now = Date.now();
    const finished = tasks.functions.reduce((sum, f) => sum + f.finished + f.failed, 0);
    const used = status.nodes.reduce((sum, node) => sum + node.objectBytes, 0);
    history.push({ at: now, finished, used });
    while (history.length && history[0].at < now - HISTORY_MS) history.shift();
    chart('throughput', history.slice(1).map((h, i) => [h.at, Math.max(0, (h.finished - history[i].finished) / ((h.at - history[i].at) / 1000))]));
    chart('store', history.map((h) => [h.at, h.used]));
    document.getElementById('updated').textContent = status.nodes.length + ' node(s) · updated ' + new Date(now).toLocaleTimeString();
  } catch (error) {
    document.getElementById('updated').innerHTML = '<span class="bad">' + text(error.message) + '</span>';
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
