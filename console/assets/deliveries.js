// An endpoint's delivery log, on the endpoint page: the organisation's delivery search
// (`endpoint_id` plus the filters), newest first, a page at a time.

import { h, replace, routeLink, time, uid } from './dom.js';
import { session } from './session.js';
import { NON_FINAL, POLL_MS, STATUSES, badge, failure, loading, statusCode } from './parts.js';
import { action, btn, isAbort } from './view.js';

const PAGE_SIZE = 20;

function rowsTable(deliveries, page) {
  return h(
    'table',
    { class: 'list', 'data-testid': 'deliveries' },
    h('caption', null, `Deliveries, newest first (page ${page + 1})`),
    h('thead', null, h('tr', null, ['Event type', 'Created', 'Status', 'Attempts', 'Last HTTP status', 'Next attempt'].map((t) => h('th', { scope: 'col' }, t)))),
    h(
      'tbody',
      null,
      deliveries.map((d) =>
        h(
          'tr',
          { 'data-delivery-id': d.id },
          h('th', { scope: 'row', class: 'wrap' }, routeLink('deliveries', d.id, String(d.event_type)), h('span', { class: 'sub' }, `Event ${d.event_id}`)),
          h('td', null, time(d.created_at)),
          h('td', null, badge(d.status)),
          h('td', { class: 'num' }, String(d.attempt_count)),
          h('td', { class: 'num' }, statusCode(d.last_status_code)),
          h('td', null, d.next_attempt_at ? time(d.next_attempt_at) : '—'),
        ),
      ),
    ),
  );
}

/**
 * The log of endpoint `endpointId` in `holder`. While any shown delivery is pending or
 * retrying it refreshes itself every 2 s; `settled` runs when that stops. Each load
 * aborts the one before it (a refresh, a filter or a page while one is on its way).
 */
export function deliveryLog(view, endpointId, holder, settled) {
  const statusId = uid('filter-status');
  const typeId = uid('filter-type');
  const statusSelect = h('select', { id: statusId }, h('option', { value: '' }, 'All statuses'), STATUSES.map((s) => h('option', { value: s }, s)));
  const typeSelect = h('select', { id: typeId }, h('option', { value: '' }, 'All event types'));
  const filters = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter deliveries' },
    h('div', { class: 'field' }, h('label', { for: statusId }, 'Status'), statusSelect),
    h('div', { class: 'field' }, h('label', { for: typeId }, 'Event type'), typeSelect),
  );
  const table = h('div', null, loading('Loading deliveries…'));
  const newer = btn('Newer', { class: 'secondary' });
  const older = btn('Older', { class: 'secondary' });
  const refresh = btn('Refresh', { class: 'secondary' });
  const live = h('p', { class: 'hint', 'data-testid': 'log-live' });
  const pager = h('div', { class: 'actions pager' }, newer, older, refresh, live);
  replace(holder, filters, table, pager);

  // cursors[i] is the cursor of page i (null for the newest page).
  let cursors = [null];
  let page = 0;
  let nextCursor = null;
  let polling = false;
  const loader = view.loader();

  async function load() {
    const signal = loader.start();
    let answer;
    try {
      answer = await session.api.searchDeliveries(
        { endpoint_id: endpointId, status: statusSelect.value, event_type: typeSelect.value, limit: PAGE_SIZE, cursor: cursors[page] },
        { signal },
      );
    } catch (error) {
      if (!isAbort(error)) {
        replace(table, failure(error, () => load()));
        live.textContent = '';
        polling = false;
      }
      return;
    }
    const deliveries = Array.isArray(answer.deliveries) ? answer.deliveries : [];
    nextCursor = answer.next_cursor || null;
    if (deliveries.length === 0) replace(table, h('p', null, page === 0 ? 'No deliveries match.' : 'No deliveries on this page: try "Older".'));
    else replace(table, rowsTable(deliveries, page));
    newer.disabled = page === 0;
    older.disabled = !nextCursor;
    if (deliveries.some((d) => NON_FINAL.has(d.status))) {
      live.textContent = 'Updating every 2 seconds while deliveries are in progress.';
      loader.repeat(load, POLL_MS);
      polling = true;
    } else {
      live.textContent = '';
      if (polling && settled) settled();
      polling = false;
    }
  }

  function reset() {
    cursors = [null];
    page = 0;
    return load();
  }

  const change = () => void reset();
  statusSelect.addEventListener('change', change);
  typeSelect.addEventListener('change', change);
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    change();
  });
  newer.addEventListener('click', () => {
    if (page > 0) {
      page -= 1;
      load();
    }
  });
  older.addEventListener('click', () => {
    if (nextCursor) {
      cursors[page + 1] = nextCursor;
      cursors.length = page + 2;
      page += 1;
      load();
    }
  });
  refresh.addEventListener('click', action(view, refresh, load));
  newer.disabled = true;
  older.disabled = true;

  return {
    reset,
    reload: load,
    setEventTypes(types) {
      const chosen = typeSelect.value;
      const all = [...new Set([...(types || []), 'webhook.test'])];
      replace(typeSelect, h('option', { value: '' }, 'All event types'), all.map((t) => h('option', { value: t }, t)));
      typeSelect.value = all.includes(chosen) ? chosen : '';
    },
  };
}
