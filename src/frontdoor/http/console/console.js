// The Cairn web console. Served by every node at /ui from its own binary; it reads that node's
// API only (same origin, no other network), every `refresh_ms` milliseconds (default 2000,
// ?refresh_ms=N in the page's address picks another).
//
// The page is a list of panels (PANELS below). Each names the data sources it reads and renders
// itself into its own <section> from the latest state. A panel for new data is one more entry
// here and, where it needs one, one more source.
'use strict';

(() => {
  const params = new URLSearchParams(window.location.search);
  const refreshMs = Math.min(Math.max(Number(params.get('refresh_ms')) || 2000, 100), 60000);
  const HISTORY = 60;  // points in the request-rate sparklines
  const DOORS = ['native', 'http', 'resp'];
  // Outcomes that are answers, not failures: a missing key, a compare-and-swap that did not apply.
  const NOT_ERRORS = new Set(['ok', 'not_found', 'condition_failed']);
  const PALETTE = ['#3b6fd8', '#e0892b', '#2e9e5b', '#b8489a', '#7a5bd0', '#c8b32a', '#2aa6b8',
                   '#d0543f', '#6b8e23', '#8c6d46', '#d46fa8', '#4f5d75'];

  // Where each panel's data comes from; fetched together, once per refresh.
  const SOURCES = {
    cluster: { url: '/v1/cluster', parse: (r) => r.json() },
    partitions: { url: '/v1/cluster/partitions', parse: (r) => r.json() },
    metrics: { url: '/metrics', parse: async (r) => parseMetrics(await r.text()) },
    hotkeys: { url: '/v1/hotkeys?limit=10', parse: (r) => r.json() },
    repairs: { url: '/v1/repairs', parse: (r) => r.json() },
  };

  const PANELS = [
    { id: 'nodes', title: 'Nodes', wide: true, sources: ['cluster'], render: renderNodes },
    { id: 'requests', title: 'Requests on this node', wide: true, sources: ['metrics'],
      render: renderRequests },
    { id: 'partitions', title: 'Partition map', wide: true, sources: ['partitions', 'cluster'],
      render: renderPartitions },
    { id: 'repair', title: 'Repair and scrub on this node', wide: true, sources: ['metrics'],
      render: renderRepair },
    { id: 'repair-runs', title: 'Repair runs by hand (cairn repair, every node asked)', wide: true,
      sources: ['repairs'], render: renderRepairRuns },
    { id: 'hotkeys', title: 'Hot keys (every node asked)', wide: true, sources: ['hotkeys', 'cluster'],
      render: renderHotKeys },
  ];

  const state = {
    data: {},          // source name -> its latest answer
    metricsAt: 0,      // when the latest metrics were read (ms)
    previous: null,    // the metrics before those, for rates: {at, doors}
    history: {},       // front door -> recent request rates
    colourBy: 0,       // the partition map colours partitions by their replica at this position
    polls: 0,
  };

  // ---- helpers ------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const svg = ['svg', 'rect', 'title', 'polyline', 'g'].includes(tag);
    const node = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag)
                     : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.setAttribute('class', v);
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'colour') node.style.backgroundColor = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }

  function rate(n) {
    if (n === null || n === undefined || !isFinite(n)) return '—';
    if (n >= 1000) return (n / 1000).toFixed(n >= 10000 ? 0 : 1) + 'k/s';
    return n.toFixed(n >= 10 || n === 0 ? 0 : 1) + '/s';
  }

  function seconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return '—';
    if (s < 1e-3) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + ' ms';
    return s.toFixed(2) + ' s';
  }

  // Node id -> colour, in the order of the members (sorted by address): stable across refreshes.
  function colours() {
    const members = (state.data.partitions && state.data.partitions.members) || [];
    const nodes = (state.data.cluster && state.data.cluster.nodes) || [];
    const ids = members.length ? members.map((m) => m.node_id) : nodes.map((n) => n.node_id);
    // Nodes outside the map (joining ones) take the next colours.
    for (const n of nodes) if (!ids.includes(n.node_id)) ids.push(n.node_id);
    const map = new Map();
    ids.forEach((id, i) => map.set(id, PALETTE[i % PALETTE.length]));
    return map;
  }

  function nodeStates() {
    const states = new Map();
    for (const n of (state.data.cluster && state.data.cluster.nodes) || []) states.set(n.node_id, n.state);
    return states;
  }

  // ---- metrics ------------------------------------------------------------------------------

  // The Prometheus text format into samples {name, labels, value}.
  function parseMetrics(text) {
    const samples = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
      samples.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return samples;
  }

  // Per front door: requests and errors so far, open connections, and the latency histogram
  // summed over operations (le -> cumulative count).
  function doorTotals(samples) {
    const doors = {};
    const door = (name) => (doors[name] = doors[name] ||
      { requests: 0, errors: 0, connections: 0, buckets: new Map() });
    for (const s of samples) {
      const d = s.labels.frontdoor;
      if (!d) continue;
      if (s.name === 'cairn_requests_total') {
        door(d).requests += s.value;
        if (!NOT_ERRORS.has(s.labels.outcome)) door(d).errors += s.value;
      } else if (s.name === 'cairn_request_duration_seconds_bucket') {
        const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
        const b = door(d).buckets;
        b.set(le, (b.get(le) || 0) + s.value);
      } else if (s.name === 'cairn_open_connections') {
        door(d).connections += s.value;
      }
    }
    return doors;
  }

  // The q-quantile of a cumulative histogram (le -> count), interpolated within its bucket as
  // Prometheus' histogram_quantile() does; null when it holds nothing.
  function quantile(q, buckets) {
    const bounds = [...buckets.keys()].sort((a, b) => a - b);
    if (!bounds.length) return null;
    const total = buckets.get(bounds[bounds.length - 1]);
    if (!(total > 0)) return null;
    const rank = q * total;
    let lowerBound = 0;
    let lowerCount = 0;
    for (const bound of bounds) {
      const count = buckets.get(bound);
      if (count >= rank) {
        if (bound === Infinity) return lowerBound;  // above the last bucket: its lower edge
        if (count === lowerCount) return bound;
        return lowerBound + (bound - lowerBound) * (rank - lowerCount) / (count - lowerCount);
      }
      lowerBound = bound;
      lowerCount = count;
    }
    return lowerBound;
  }

  function difference(now, before) {
    const out = new Map();
    for (const [le, count] of now) out.set(le, Math.max(0, count - ((before && before.get(le)) || 0)));
    return out;
  }

  // ---- panels -------------------------------------------------------------------------------

  function renderNodes(section) {
    const cluster = state.data.cluster;
    const palette = colours();
    const nodes = [...cluster.nodes].sort((a, b) =>
      (a.dc + '\0' + a.rack + '\0' + a.address).localeCompare(b.dc + '\0' + b.rack + '\0' + b.address));
    const rows = nodes.map((n) => el('tr', { class: n.state, dataset: { nodeId: n.node_id, state: n.state } },
      el('td', {}, el('span', { class: 'state ' + n.state }, n.state)),
      el('td', {}, (n.member || '—') + (n.dead ? ' (dead)' : '') +
        (n.streams_total ? ` · streaming ${n.streams_done}/${n.streams_total}, ${bytes(n.stream_bytes || 0)}` +
          (n.stream_rate ? ` at ${bytes(n.stream_rate)}/s` : '') +
          (n.streaming ? ` (now partition ${n.streaming.partition} from node ${n.streaming.source})` : '') : '')),
      el('td', {}, el('span', { class: 'swatch', colour: palette.get(n.node_id) || '#999' }),
        n.node_id || '(not heard from)', n.self ? el('span', { class: 'self' }, '(this node)') : null),
      el('td', {}, n.address),
      el('td', {}, n.dc || '—'),
      el('td', {}, n.rack || '—'),
      el('td', { class: 'num' }, bytes(n.load_bytes || 0)),
      el('td', { class: 'num' }, bytes(n.dead_bytes || 0)),
      el('td', { class: 'num' }, n.partitions),
      el('td', { class: 'num' }, n.hints_pending)));
    section.append(el('table', { id: 'node-table' },
      el('thead', {}, el('tr', {},
        el('th', {}, 'State'), el('th', {}, 'Member'), el('th', {}, 'Node'), el('th', {}, 'Address'),
        el('th', {}, 'DC'),
        el('th', {}, 'Rack'), el('th', { class: 'num' }, 'Load'), el('th', { class: 'num' }, 'Dead'),
        el('th', { class: 'num' }, 'Partitions'), el('th', { class: 'num' }, 'Hints pending'))),
      el('tbody', {}, ...rows)));
    if (!cluster.formed) section.append(el('p', { class: 'note' }, 'Not formed yet: ' + (cluster.note || '')));
    section.append(el('p', { id: 'topology-change' }, `Topology epoch ${cluster.topology_epoch || 0}: ` +
      (cluster.change ? cluster.change : 'no change in progress')));
    section.append(el('p', { class: 'note' },
      'State is this node\'s failure detector\'s view; Member is its place in the topology ' +
      '(NORMAL, JOINING, LEAVING) and its streaming during a change. Load is the bytes a node stores; ' +
      'Dead is the part of it that is tombstones and expired values (purged by repair, reclaimed by ' +
      'compaction); partitions are the partition replicas it holds.'));
  }

  function renderHotKeys(section) {
    const hot = state.data.hotkeys;
    const palette = colours();
    const rate = (v) => v >= 100 ? Math.round(v).toLocaleString() : v.toFixed(1);
    if (hot.keys.length === 0) {
      section.append(el('p', { class: 'note', id: 'hotkeys-none' },
        'No key stands out: a key is listed once it is above 1/128 of a node\'s operations.'));
    } else {
      const rows = hot.keys.map((k) => {
        const key = k.key !== undefined ? k.key : 'base64:' + k.key_base64;
        // A split counter's sub-counters (docs/hot-keys.md); '-' for any other key.
        const split = k.split_shards ? String(k.split_shards) : '-';
        return el('tr', { dataset: { key, keyspace: k.keyspace, split } },
          el('td', {}, k.keyspace),
          el('td', { class: 'key' }, key + (k.truncated ? '…' : '')),
          el('td', { class: 'num' }, rate(k.reads_per_s)),
          el('td', { class: 'num' }, rate(k.writes_per_s)),
          el('td', { class: 'num' }, rate(k.increments_per_s || 0)),
          el('td', { class: 'num' }, '±' + rate(k.error_per_s)),
          el('td', { class: 'num' }, split),
          el('td', {}, ...k.nodes.map((n) => el('span', { class: 'hot-node' },
            el('span', { class: 'swatch', colour: palette.get(n.node) || '#999' }),
            `${n.node} (${rate(n.ops_per_s)}/s)`))));
      });
      section.append(el('table', { id: 'hotkey-table' },
        el('thead', {}, el('tr', {},
          el('th', {}, 'Keyspace'), el('th', {}, 'Key'), el('th', { class: 'num' }, 'Reads/s'),
          el('th', { class: 'num' }, 'Writes/s'), el('th', { class: 'num' }, 'Incr/s'),
          el('th', { class: 'num' }, 'Overcount'), el('th', { class: 'num' }, 'Split'),
          el('th', {}, 'Coordinated by (ops/s)'))),
        el('tbody', {}, ...rows)));
    }
    const missing = hot.nodes_missing.length
      ? ` ${hot.nodes_missing.length} of ${hot.nodes_asked} live nodes did not answer: their load is not counted.` : '';
    section.append(el('p', { class: 'note' },
      'Estimates from one operation in eight over the last 10-20 s, summed over the nodes that ' +
      'coordinated them (cairn hotkeys). Incr/s counts the increments among the writes; Split is ' +
      'the number of sub-counters a split counter is spread over.' + missing));
  }

  function renderPartitions(section) {
    const map = state.data.partitions;
    if (!map.formed) {
      section.append(el('p', { class: 'note' }, 'The cluster has not formed yet: ' + (map.note || '')));
      return;
    }
    const palette = colours();
    const states = nodeStates();
    const byId = new Map(map.members.map((m) => [m.node_id, m]));
    const deepest = Math.max(1, ...map.dcs.map((dc) => dc.replication));
    // -1 colours by movement; 0.. by the replica at that position of each preference list.
    state.colourBy = Math.min(state.colourBy, deepest - 1);
    const select = el('select', { id: 'colour-by', onchange: (e) => { state.colourBy = Number(e.target.value); render(); } });
    for (let i = -1; i < deepest; i++) {
      const label = i < 0 ? 'movement' : i === 0 ? 'primary owner' : 'replica ' + (i + 1);
      const option = el('option', { value: String(i) }, label);
      if (i === state.colourBy) option.selected = true;
      select.append(option);
    }
    const movingCount = map.dcs.reduce((sum, dc) => sum + (dc.moving || []).length, 0);
    const change = map.change
      ? el('p', { id: 'partition-change' }, `Moving: ${movingCount} partition${movingCount === 1 ? '' : 's'} ` +
          `(${map.change.description}, ${map.change.stage}); outlined in the grid.`)
      : el('p', { id: 'partition-change' }, 'No partition is moving.');
    const side = el('div', { class: 'side' },
      el('div', { class: 'controls' }, el('label', {}, 'Colour by ', select)),
      el('p', {}, map.partitions + ' partitions, epoch ' + map.epoch),
      change,
      el('ul', { class: 'legend' }, ...map.members.map((m) => el('li', {},
        el('span', { class: 'swatch', colour: palette.get(m.node_id) }),
        m.address + ' (' + m.node_id + ', ' + m.dc + '/' + m.rack + ')',
        states.get(m.node_id) === 'DOWN' ? el('span', { class: 'state DOWN' }, 'DOWN') : null))),
      el('p', { class: 'note' },
        'One square per partition, in partition order, coloured by the node that holds it at ' +
        'the chosen position of its preference list; faded where that node is DOWN. By ' +
        'movement: grey where the replicas stay, else the colour of the node that gains the ' +
        'partition. Hover over a square for its replicas (and where it moves).'));

    const columns = 1 << Math.ceil(Math.log2(map.partitions) / 2);
    const rows = Math.ceil(map.partitions / columns);
    const cell = 10;
    const grids = el('div', { class: 'grids' });
    for (const dc of map.dcs) {
      const svg = el('svg', { class: 'grid', viewBox: `0 0 ${columns * cell} ${rows * cell}`,
                              role: 'img', 'aria-label': 'partitions of ' + dc.name + ' by owner' });
      const moving = new Map((dc.moving || []).map((m) => [m.partition, m.to]));
      const name = (id) => (byId.has(id) ? byId.get(id).address : String(id));
      dc.replicas.forEach((replicas, p) => {
        const to = moving.get(p);
        let owner;
        if (state.colourBy >= 0) {
          owner = replicas[state.colourBy];
        } else if (to) {
          owner = to.find((id) => !replicas.includes(id));
        }
        const names = replicas.map((id, i) => name(id) +
          (i === 0 ? ' (primary)' : '') + (states.get(id) === 'DOWN' ? ' DOWN' : ''));
        const classes = [];
        if (owner !== undefined && states.get(owner) === 'DOWN') classes.push('down');
        if (to) classes.push('moving');
        svg.append(el('rect', {
          x: (p % columns) * cell + 0.5, y: Math.floor(p / columns) * cell + 0.5,
          width: cell - 1, height: cell - 1,
          fill: owner === undefined ? '#ccc' : palette.get(owner) || '#999',
          class: classes.join(' '),
          'data-partition': p,
        }, el('title', {}, 'partition ' + p + ': ' + names.join(', ') +
          (to ? '; moving to ' + to.map(name).join(', ') : ''))));
      });
      grids.append(el('div', { class: 'dc' },
        el('h3', {}, dc.name + ' — ' + dc.replication + ' replicas of each partition'), svg));
    }
    section.append(el('div', { class: 'map' }, grids, side));
  }

  function renderRequests(section) {
    const now = doorTotals(state.data.metrics);
    const before = state.previous;
    const interval = before ? (state.metricsAt - before.at) / 1000 : 0;
    const rows = DOORS.map((name) => {
      const d = now[name] || { requests: 0, errors: 0, connections: 0, buckets: new Map() };
      const b = before && before.doors[name];
      const perSecond = b && interval > 0 ? Math.max(0, d.requests - b.requests) / interval : null;
      const errors = b && interval > 0 ? Math.max(0, d.errors - b.errors) / interval : null;
      const recent = b ? quantile(0.99, difference(d.buckets, b.buckets)) : null;
      const history = state.history[name] || [];
      const spark = el('svg', { class: 'spark', viewBox: `0 0 ${HISTORY} 20`, preserveAspectRatio: 'none' });
      if (history.length > 1) {
        const top = Math.max(...history, 1);
        spark.append(el('polyline', {
          points: history.map((v, i) => `${HISTORY - history.length + i},${20 - (v / top) * 19}`).join(' '),
        }));
      }
      return el('tr', { dataset: { frontdoor: name } },
        el('td', {}, name),
        el('td', { class: 'num' }, rate(perSecond)),
        el('td', { class: 'num' }, rate(errors)),
        el('td', { class: 'num' }, seconds(recent)),
        el('td', { class: 'num' }, seconds(quantile(0.99, d.buckets))),
        el('td', { class: 'num' }, d.connections),
        el('td', {}, spark));
    });
    section.append(el('table', { id: 'request-table' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Front door'), el('th', { class: 'num' }, 'Requests'),
        el('th', { class: 'num' }, 'Errors'), el('th', { class: 'num' }, 'p99 now'),
        el('th', { class: 'num' }, 'p99 since start'), el('th', { class: 'num' }, 'Connections'),
        el('th', {}, 'Trend'))),
      el('tbody', {}, ...rows)));
    section.append(el('p', { class: 'note' },
      'From this node\'s /metrics: requests it answered as coordinator, per second since the ' +
      'last refresh. Errors exclude answers such as "not found". This page\'s own reads of ' +
      '/v1/cluster count as HTTP requests.'));
  }

  // Background repair's and the scrub's counters since start, and the storage's garbage.
  function renderRepair(section) {
    const value = (name) => {
      const s = state.data.metrics.find((m) => m.name === name);
      return s ? s.value : 0;
    };
    const lastCycle = value('cairn_repair_last_cycle_seconds');
    const rows = [
      ['Ranges repaired (agreed)', `${value('cairn_repair_ranges_total')} (${value('cairn_repair_ranges_agreed_total')})`],
      ['Segments compared / differing', `${value('cairn_repair_segments_compared_total')} / ${value('cairn_repair_segments_differing_total')}`],
      ['Keys repaired', `${value('cairn_repair_keys_repaired_total')} (${bytes(value('cairn_repair_bytes_total'))})`],
      ['Tombstones purged', String(value('cairn_tombstones_purged_total'))],
      ['Full cycles', value('cairn_repair_cycles_total') + (lastCycle ? ` (last took ${lastCycle.toFixed(0)} s)` : '')],
      ['Scrubs (files, bytes checked)', `${value('cairn_scrubs_total')} (${value('cairn_scrub_files_total')}, ${bytes(value('cairn_scrub_bytes_total'))})`],
      ['Corrupt files dropped (ranges; still to repair)', `${value('cairn_scrub_corrupt_files_total')} (${value('cairn_scrub_ranges_dropped_total')}; ${value('cairn_scrub_ranges_to_repair')})`],
      ['Garbage in table files', `${bytes(value('cairn_storage_dead_bytes'))} of ${bytes(value('cairn_storage_table_bytes'))}`],
    ].map(([what, figure]) => el('tr', {}, el('td', {}, what), el('td', { class: 'num' }, figure)));
    section.append(el('table', { id: 'repair-table' }, el('tbody', {}, ...rows)));
    section.append(el('p', { class: 'note' },
      'From this node\'s /metrics, since it started: the ranges its background repair compared ' +
      'with their other replicas (it repairs those it is the first replica of), and its scrubs of ' +
      'its own table files (docs/operations.md, "Repair").'));
  }

  // Runs of `cairn repair` (GET /v1/repairs): those running with a progress bar, and those that
  // ended within the last hour.
  const RUN_KEPT_MS = 3600 * 1000;
  function renderRepairRuns(section) {
    const answer = state.data.repairs;
    const now = answer.now_ms;
    const runs = answer.runs.filter((r) => r.state === 'running' || now - r.updated_ms <= RUN_KEPT_MS);
    const ago = (ms) => {
      const s = Math.max(0, (now - ms) / 1000);
      return s < 90 ? `${s.toFixed(0)} s ago` : s < 5400 ? `${(s / 60).toFixed(0)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
    };
    const duration = (s) => s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(0)} min` : `${(s / 3600).toFixed(1)} h`;
    if (runs.length === 0) {
      section.append(el('p', { class: 'note', id: 'repair-runs-none' },
        'No cairn repair run in the last hour.'));
    } else {
      const rows = runs.map((r) => {
        const pct = r.ranges_total ? Math.min(100, (100 * r.ranges_done) / r.ranges_total) : 0;
        const fill = el('div', { class: 'fill ' + r.state });
        fill.style.width = pct.toFixed(1) + '%';
        const what = r.keyspaces.join(', ') +
          (r.partition !== null ? ` · partition ${r.partition}` : '') +
          (r.node !== null ? ` · node ${r.node}` : '');
        let when;
        if (r.state === 'running') {
          when = r.eta_s !== null ? `ETA ${duration(r.eta_s)}` : 'starting';
          if (r.current) when += ` · now ${r.current.keyspace}/${r.current.partition}`;
        } else {
          when = `${r.state} ${ago(r.updated_ms)}`;
        }
        return el('tr', { dataset: { runId: r.id, state: r.state, done: r.ranges_done, total: r.ranges_total } },
          el('td', { class: 'key' }, r.id),
          el('td', {}, el('span', { class: 'run-state ' + r.state }, r.state)),
          el('td', { class: 'progress' },
            el('div', { class: 'bar', title: `${pct.toFixed(1)}%` }, fill),
            el('span', { class: 'ranges' }, `${r.ranges_done.toLocaleString()} / ${r.ranges_total.toLocaleString()} ranges`)),
          el('td', {}, what),
          el('td', { class: 'num' }, r.keys_repaired.toLocaleString()),
          el('td', { class: 'num' }, bytes(r.bytes)),
          el('td', { class: 'num' }, `${rate(r.ranges_per_s)} · ${bytes(Math.round(r.bytes_per_s))}/s`),
          el('td', { class: 'num' }, `${r.ranges_skipped} / ${r.ranges_failed}`),
          el('td', { title: r.last_error || '' }, when),
          el('td', {}, ago(r.started_ms)));
      });
      section.append(el('table', { id: 'repair-run-table' },
        el('thead', {}, el('tr', {},
          el('th', {}, 'Run'), el('th', {}, 'State'), el('th', {}, 'Progress'), el('th', {}, 'What'),
          el('th', { class: 'num' }, 'Keys repaired'), el('th', { class: 'num' }, 'Sent'),
          el('th', { class: 'num' }, 'Ranges/s · sent/s'), el('th', { class: 'num' }, 'Skipped / failed'),
          el('th', {}, 'ETA or end'), el('th', {}, 'Started'))),
        el('tbody', {}, ...rows)));
      const failed = runs.filter((r) => r.last_error);
      for (const r of failed) {
        section.append(el('p', { class: 'note run-error', dataset: { runId: r.id } },
          `Run ${r.id}: ${r.ranges_failed} range(s) failed; the last: ${r.last_error}`));
      }
    }
    const missing = answer.nodes_missing.length
      ? ` ${answer.nodes_missing.length} of ${answer.nodes_asked} live nodes did not answer: their part of each run is missing.` : '';
    section.append(el('p', { class: 'note' },
      'Each node counts the ranges of a cairn repair run that it repairs (the command sends them ' +
      'one by one to its --server; a client with several servers spreads them), and this panel ' +
      'adds them up. A run none of whose ' +
      'ranges began or ended for 2 minutes is abandoned: its cairn repair stopped before the end ' +
      '(docs/operations.md, "Repair"). Background repair is in the panel above.' + missing));
  }

  // ---- the page -----------------------------------------------------------------------------

  function render() {
    const container = document.getElementById('panels');
    for (const panel of PANELS) {
      let section = document.getElementById(panel.id);
      if (!section) {
        section = el('section', { id: panel.id, class: panel.wide ? 'wide' : '' });
        container.append(section);
      }
      section.replaceChildren(el('h2', {}, panel.title));
      if (panel.sources.some((s) => state.data[s] === undefined)) {
        section.append(el('p', { class: 'note' }, 'waiting for data…'));
        continue;
      }
      panel.render(section);
    }
    const cluster = state.data.cluster;
    if (cluster) {
      const up = cluster.nodes.filter((n) => n.state === 'UP').length;
      const self = cluster.nodes.find((n) => n.self);
      document.getElementById('summary').textContent =
        `${cluster.nodes.length} nodes, ${up} UP · ${cluster.partitions} partitions` +
        (cluster.formed ? '' : ' · not formed') +
        (self ? ` · served by node ${self.node_id} (${self.address})` : '');
    }
  }

  async function poll() {
    const names = [...new Set(PANELS.flatMap((p) => p.sources))];
    const failures = [];
    await Promise.all(names.map(async (name) => {
      try {
        const response = await fetch(SOURCES[name].url, { cache: 'no-store' });
        if (!response.ok) {
          let message = response.status + ' ' + response.statusText;
          try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
          throw new Error(message);
        }
        const value = await SOURCES[name].parse(response);
        if (name === 'metrics') {
          if (state.data.metrics) state.previous = { at: state.metricsAt, doors: doorTotals(state.data.metrics) };
          state.metricsAt = Date.now();
        }
        state.data[name] = value;
      } catch (e) {
        failures.push(SOURCES[name].url + ': ' + e.message);
      }
    }));
    if (state.data.metrics && state.previous) {
      const now = doorTotals(state.data.metrics);
      const interval = (state.metricsAt - state.previous.at) / 1000;
      for (const name of DOORS) {
        const was = state.previous.doors[name];
        const h = (state.history[name] = state.history[name] || []);
        h.push(was && interval > 0 ? Math.max(0, (now[name] || { requests: 0 }).requests - was.requests) / interval : 0);
        if (h.length > HISTORY) h.shift();
      }
    }
    const banner = document.getElementById('banner');
    banner.hidden = failures.length === 0;
    banner.textContent = failures.length ? 'Cannot read this node: ' + failures.join('; ') : '';
    render();
    state.polls++;
    document.body.dataset.polls = String(state.polls);
    document.getElementById('updated').textContent =
      'updated ' + new Date().toLocaleTimeString() + ' · every ' + refreshMs / 1000 + ' s';
    window.setTimeout(poll, refreshMs);
  }

  poll();
})();
