// The /ui page's script. Everything it shows comes from the REST read routes and reaches the
// page through textContent and attributes only: a namespace or owner is never parsed as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'devenv-scheduler.token';
  const DAYS = 14;
  const WEEKS = 8;
  // The timelines are fetched a few at a time: one request per environment, and a browser
  // queues the rest anyway.
  const TIMELINE_CONCURRENCY = 4;
  // The figures are the API's; en-US so the page reads the same on every machine. A figure
  // under 1 keeps two significant digits, so a short sleep does not read as nothing.
  const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
  const smallFormat = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 2 });
  const format = (value) => (value !== 0 && Math.abs(value) < 1 ? smallFormat : numberFormat).format(value);
  // The bars' colours, used for nothing else drawn on the chart's canvas.
  const CPU_COLOUR = '#2f6fb0';
  const MEMORY_COLOUR = '#e0a030';

  const $ = (id) => document.getElementById(id);

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function getJson(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const response = await fetch(path, {
      headers: token ? { Accept: 'application/json', Authorization: `Bearer ${token}` } : { Accept: 'application/json' },
      credentials: 'omit',
      cache: 'no-store',
    });
    let body;
    try {
      body = await response.json();
    } catch {
      body = undefined;
    }
    if (!response.ok)
      throw new HttpError(response.status, (body && typeof body.error === 'string' && body.error) || `HTTP ${response.status}`);
    return body;
  }

  const figure = (value) => (typeof value === 'number' ? format(value) : '—');
  const money = (value, currency) => (typeof value === 'number' ? `${format(value)}${currency ? ` ${currency}` : ''}` : '—');

  function instant(iso) {
    const node = element('time', iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—');
    if (iso) node.setAttribute('datetime', iso);
    return node;
  }

  function cell(row, text, className) {
    const td = element('td', text, className);
    row.append(td);
    return td;
  }

  function showError(id, err) {
    $(id).textContent = err ? String(err.message || err) : '';
  }

  function renderEnvironments(environments, savings) {
    const byNamespace = new Map((savings ? savings.environments : []).map((entry) => [entry.namespace, entry]));
    const rows = environments.map((env) => {
      const row = element('tr');
      row.dataset.namespace = env.namespace;
      cell(row, env.namespace, 'namespace');
      cell(row, env.enabled ? env.phase : `${env.phase} (disabled)`, `phase phase-${env.phase}`);
      cell(row).append(instant(env.nextShutdown));
      const owners = cell(row, undefined, 'owners');
      for (const owner of env.owners || []) owners.append(element('span', owner, 'owner'));
      const saved = byNamespace.get(env.namespace);
      cell(row, saved ? figure(saved.hoursAsleep) : '—', 'number hours-asleep');
      cell(row, saved ? figure(saved.cpuCoreHours) : '—', 'number cpu');
      cell(row, saved ? figure(saved.memoryGiBHours) : '—', 'number memory');
      cell(row, saved ? money(saved.cost, savings.currency) : '—', 'number cost');
      return row;
    });
    $('environment-rows').replaceChildren(...rows);
    if (environments.length === 0) {
      const row = element('tr');
      cell(row, 'No environment is enrolled.').colSpan = 8;
      $('environment-rows').append(row);
    }
  }

  function timelineRow(namespace) {
    const row = element('div', undefined, 'timeline');
    row.dataset.namespace = namespace;
    row.append(element('span', namespace, 'timeline-name'));
    const bar = element('div', undefined, 'timeline-bar');
    bar.setAttribute('role', 'img');
    bar.setAttribute('aria-label', `${namespace}: loading`);
    row.append(bar);
    return row;
  }

  function drawTimeline(row, timeline) {
    const bar = row.querySelector('.timeline-bar');
    const from = Date.parse(timeline.from);
    const to = Date.parse(timeline.to);
    const span = to - from;
    let asleepMs = 0;
    for (const period of timeline.asleep) {
      const start = Math.max(from, Date.parse(period.from));
      const end = Math.min(to, period.to ? Date.parse(period.to) : to);
      if (!(end > start)) continue;
      asleepMs += end - start;
      const segment = element('span', undefined, 'asleep');
      // CSSOM, not a style attribute: the Content-Security-Policy allows no inline style.
      segment.style.left = `${((start - from) / span) * 100}%`;
      segment.style.width = `${((end - start) / span) * 100}%`;
      segment.dataset.from = period.from;
      segment.dataset.to = period.to || '';
      segment.title = `asleep ${new Date(start).toLocaleString()} – ${period.to ? new Date(end).toLocaleString() : 'now'}`;
      bar.append(segment);
    }
    const hours = asleepMs / 3_600_000;
    row.dataset.hoursAsleep = String(hours);
    bar.setAttribute('aria-label', `${timeline.namespace}: asleep ${format(hours)} h of the last ${DAYS} days`);
  }

  async function renderTimelines(environments) {
    const container = $('timeline-rows');
    const rows = environments.map((env) => timelineRow(env.namespace));
    container.replaceChildren(...rows);
    const failures = [];
    let next = 0;
    async function work() {
      while (next < environments.length) {
        const index = next++;
        const namespace = environments[index].namespace;
        try {
          drawTimeline(rows[index], await getJson(`/api/v1/environments/${encodeURIComponent(namespace)}/timeline?days=${DAYS}`));
        } catch (err) {
          rows[index].classList.add('failed');
          rows[index].querySelector('.timeline-bar').setAttribute('aria-label', `${namespace}: ${err.message}`);
          failures.push(`${namespace}: ${err.message}`);
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(TIMELINE_CONCURRENCY, environments.length) }, work));
    showError('timelines-error', failures.length ? `no timeline for ${failures.join('; ')}` : undefined);
  }

  let chart;
  function renderWeekly(weekly) {
    const weeks = weekly.weeks;
    const rows = weeks.map((week) => {
      const row = element('tr');
      row.dataset.from = week.from;
      cell(row, new Date(week.from).toLocaleDateString('en-CA', { timeZone: 'UTC' }), 'week');
      cell(row, figure(week.cpuCoreHours), 'number cpu');
      cell(row, figure(week.memoryGiBHours), 'number memory');
      const instances = Object.entries(week.instanceHours || {});
      cell(row, instances.length ? instances.map(([type, hours]) => `${type}: ${figure(hours)}`).join(', ') : '—', 'instances');
      cell(row, money(week.cost, weekly.currency), 'number cost');
      return row;
    });
    $('savings-rows').replaceChildren(...rows);

    const container = $('savings-chart');
    chart?.destroy();
    container.replaceChildren();
    if (weeks.length === 0) return;
    const xs = weeks.map((week) => Date.parse(week.from) / 1000);
    const halfWeek = 3.5 * 86_400;
    chart = new uPlot(
      {
        width: Math.max(320, container.clientWidth),
        height: 260,
        scales: {
          x: { time: true, range: () => [xs[0] - halfWeek, xs[xs.length - 1] + halfWeek] },
          cpu: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
          memory: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
        },
        axes: [
          // One tick a week, at its Monday, rather than the calendar's round days.
          {
            splits: () => xs,
            values: (_u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleDateString('en-CA', { timeZone: 'UTC' })),
          },
          { scale: 'cpu', label: 'CPU core-hours' },
          { scale: 'memory', label: 'memory GiB-hours', side: 1, grid: { show: false } },
        ],
        series: [
          { label: 'week from', value: (_u, t) => (t == null ? '—' : new Date(t * 1000).toLocaleDateString('en-CA', { timeZone: 'UTC' })) },
          {
            label: 'CPU core-hours',
            scale: 'cpu',
            stroke: CPU_COLOUR,
            fill: CPU_COLOUR,
            paths: uPlot.paths.bars({ size: [0.35, 48], align: -1 }),
            points: { show: false },
            value: (_u, v) => figure(v),
          },
          {
            label: 'memory GiB-hours',
            scale: 'memory',
            stroke: MEMORY_COLOUR,
            fill: MEMORY_COLOUR,
            paths: uPlot.paths.bars({ size: [0.35, 48], align: 1 }),
            points: { show: false },
            value: (_u, v) => figure(v),
          },
        ],
      },
      [xs, weeks.map((week) => week.cpuCoreHours), weeks.map((week) => week.memoryGiBHours)],
      container,
    );
    container.dataset.drawn = 'true';
  }

  async function load() {
    let list;
    try {
      list = await getJson('/api/v1/environments');
    } catch (err) {
      if (err.status === 401) {
        $('token').hidden = false;
        showError('token-error', sessionStorage.getItem(TOKEN_KEY) ? err : undefined);
        return;
      }
      showError('environments-error', err);
      return;
    }
    $('token').hidden = true;
    showError('environments-error');
    const environments = list.environments;
    const [week, weekly] = await Promise.allSettled([
      getJson('/api/v1/savings?period=week'),
      getJson(`/api/v1/savings/weekly?weeks=${WEEKS}`),
    ]);
    renderEnvironments(environments, week.status === 'fulfilled' ? week.value : undefined);
    if (weekly.status === 'fulfilled') {
      showError('savings-error');
      renderWeekly(weekly.value);
    } else showError('savings-error', weekly.reason);
    if (week.status === 'rejected' && weekly.status === 'fulfilled') showError('environments-error', week.reason);
    await renderTimelines(environments);
    $('loaded').textContent = `As of ${new Date().toLocaleString()}.`;
    document.body.dataset.loaded = 'true';
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim());
    $('token-input').value = '';
    void load();
  });

  void load();
})();
