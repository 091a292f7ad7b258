/**
 * The dashboard's HTML: the page's fixed frame (every region has its size before data arrives, so
 * nothing moves when it does), the bundle's script and stylesheet by content hash.
 */
export function pageHtml(hash: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>myelin dashboard</title>
<link rel="stylesheet" href="/dashboard/app.css?v=${hash}">
<script type="module" src="/dashboard/app.js?v=${hash}"></script>
</head>
<body>
<a class="skip" href="#detail">Skip to the selected API</a>
<header class="top">
  <h1>myelin</h1>
  <span id="conn" class="conn" role="status" aria-live="polite">connecting…</span>
  <span id="clock" class="muted"></span>
</header>
<main>
  <section id="apis-section" aria-labelledby="apis-h">
    <div class="section-head"><h2 id="apis-h">APIs</h2><span id="api-count" class="muted"></span>
      <label class="filter">filter <input id="api-filter" type="search" placeholder="name" autocomplete="off"></label></div>
    <div class="table-wrap apis-wrap">
      <table id="apis" class="apis">
        <thead><tr><th scope="col">name</th><th scope="col">status</th><th scope="col">endpoint</th>
          <th scope="col" title="requested / up to date / stale / failed">replicas <span class="muted">req/up/stale/failed</span></th>
          <th scope="col" class="num">2xx/s</th><th scope="col" class="num">4xx/s</th><th scope="col" class="num">5xx/s</th><th scope="col" class="num">latency ms</th></tr></thead>
        <tbody></tbody>
      </table>
      <p id="apis-empty" class="muted empty">No API is deployed. Deploy one with <code>myelin deploy</code>.</p>
    </div>
  </section>
  <section id="detail" aria-labelledby="detail-h" tabindex="-1">
    <div class="section-head"><h2 id="detail-h">Select an API</h2><span id="detail-status" class="badge"></span><span id="detail-url" class="muted"></span></div>
    <div class="chart-box">
      <div id="chart" class="chart" aria-label="in flight and replicas over the last 15 minutes"></div>
      <div id="tooltip" class="tooltip" role="tooltip" hidden></div>
    </div>
    <div class="grid">
      <div class="card"><h3>Autoscaler</h3><dl id="autoscaler" class="kv"></dl></div>
      <div class="card"><h3>Rollout</h3><div id="rollout"><div class="bar"><span id="rollout-bar"></span></div><p id="rollout-text" class="muted">–</p></div></div>
      <div class="card"><h3>Monitoring</h3><div id="monitoring" class="muted">–</div></div>
      <div class="card whatif"><h3>What if</h3>
        <form id="whatif" autocomplete="off">
          <label>last <select name="minutes"><option value="5">5 min</option><option value="15" selected>15 min</option><option value="30">30 min</option><option value="60">60 min</option></select></label>
          <label>policy <select name="policy"><option value="">same</option><option>cortex</option><option>burst</option></select></label>
          <label>window <input name="window" placeholder="60s" size="6"></label>
          <label>target <input name="target_replica_concurrency" placeholder="" size="5" inputmode="decimal"></label>
          <label>down stabilization <input name="downscale_stabilization_period" placeholder="5m" size="6"></label>
          <label>up stabilization <input name="upscale_stabilization_period" placeholder="1m" size="6"></label>
          <button type="submit">Re-run</button> <button type="button" id="whatif-clear">Clear</button>
          <p id="whatif-out" class="muted" role="status" aria-live="polite"></p>
        </form>
      </div>
    </div>
    <h3>Decisions</h3>
    <ol id="decisions" class="decisions"></ol>
    <h3>Replicas</h3>
    <div class="table-wrap"><table id="replicas" class="replicas">
      <thead><tr><th scope="col">replica</th><th scope="col">state</th><th scope="col">revision</th><th scope="col">pid / pod</th><th scope="col" class="num">restarts</th><th scope="col">note</th></tr></thead>
      <tbody></tbody></table></div>
    <h3>Last log lines</h3>
    <pre id="loglines" class="loglines"></pre>
  </section>
  <section id="events-section" aria-labelledby="events-h">
    <div class="section-head"><h2 id="events-h">Events</h2>
      <label class="filter">type <select id="ev-type"><option value="">all</option><option>scaling.decided</option><option>replica.</option><option>api.</option><option>rollout.progress</option><option>metrics.unavailable</option><option>model.</option><option>deploy.progress</option></select></label>
      <label class="filter">api <select id="ev-api"><option value="">all</option><option value="@selected">selected</option></select></label>
      <label class="filter">text <input id="ev-text" type="search" autocomplete="off"></label></div>
    <div class="table-wrap events-wrap"><table id="events" class="events">
      <thead><tr><th scope="col">time</th><th scope="col">api</th><th scope="col">type</th><th scope="col">what</th></tr></thead>
      <tbody></tbody></table></div>
  </section>
</main>
</body>
</html>
`;
}

/** The 401 page: what to open instead. */
export function refusedHtml(message: string): string {
  const text = message.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>myelin dashboard: token needed</title></head>
<body><h1>myelin dashboard</h1><p id="refused">${text}</p></body></html>
`;
}
