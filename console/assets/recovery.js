// Recovering an endpoint's failed deliveries: the dialog that counts them (a dry run) and
// starts the recovery, and the panel that follows its progress until it is done.

import { h, replace, uid } from './dom.js';
import { session } from './session.js';
import { action, announce, btn, errorText, isAbort, openDialog } from './view.js';

const RECOVERY_POLL_MS = 1000;

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** `{since, until?}` in RFC 3339 from datetime-local values, or an error text. */
function rangeBody(sinceValue, untilValue) {
  const since = new Date(sinceValue);
  if (!sinceValue || Number.isNaN(since.getTime())) return 'Enter the start of the period ("Since").';
  const body = { since: since.toISOString() };
  if (untilValue) {
    const until = new Date(untilValue);
    if (Number.isNaN(until.getTime())) return 'The end of the period ("Until") is not a valid time.';
    if (until <= since) return '"Until" must be later than "Since".';
    body.until = until.toISOString();
  }
  return body;
}

function deliveries(n) {
  return `${n} deliver${n === 1 ? 'y' : 'ies'}`;
}

/** The dialog for endpoint `id`; `started(recoveryId)` runs once a recovery has started
 * (and the dialog has closed) while `view` is shown. */
export function recoverDialog(view, id, started) {
  const sinceId = uid('since');
  const untilId = uid('until');
  const since = h('input', { id: sinceId, type: 'datetime-local', required: true, step: 60, value: localInputValue(new Date(Date.now() - 24 * 3600 * 1000)) });
  const until = h('input', { id: untilId, type: 'datetime-local', step: 60 });
  const result = h('p', { class: 'dry-run', role: 'status', 'data-testid': 'dry-run' }, 'Check how many failed deliveries would be sent again.');
  const check = btn('Check', { class: 'secondary' });
  const start = btn('Recover', { class: 'primary', disabled: true });
  const cancel = btn('Cancel', { class: 'secondary' });
  let range = null;
  const { close } = openDialog(view, 'Recover failed deliveries', (closeDialog) => {
    cancel.addEventListener('click', closeDialog);
    return [
      h('p', null, 'Sends every failed delivery of this endpoint created in the period again, as a manual attempt.'),
      h('div', { class: 'field' }, h('label', { for: sinceId }, 'Since (your local time)'), since),
      h('div', { class: 'field' }, h('label', { for: untilId }, 'Until (optional, your local time)'), until),
      result,
      h('div', { class: 'actions' }, check, start, cancel),
    ];
  });
  since.focus();
  const invalidate = () => {
    range = null;
    start.disabled = true;
    start.textContent = 'Recover';
  };
  since.addEventListener('input', invalidate);
  until.addEventListener('input', invalidate);
  /** The API's answer to `body`, or null after showing its error in the dialog. */
  const ask = async (body) => {
    try {
      return await view.settle(session.api.recover(id, body));
    } catch (error) {
      if (isAbort(error)) throw error;
      result.textContent = errorText(error);
      return null;
    }
  };
  check.addEventListener(
    'click',
    action(view, check, async () => {
      invalidate();
      const body = rangeBody(since.value, until.value);
      if (typeof body === 'string') {
        result.textContent = body;
        return;
      }
      result.textContent = 'Counting…';
      const answer = await ask({ ...body, dry_run: true });
      if (!answer) return;
      const n = Number(answer.count) || 0;
      // A capped count stopped at n: there are more, and a recovery sends them all.
      const more = answer.capped === true;
      if (n === 0) result.textContent = 'No failed deliveries in this period: nothing to recover.';
      else if (more) result.textContent = `More than ${n} failed deliveries: all of them will be sent again.`;
      else result.textContent = `${n} failed ${n === 1 ? 'delivery' : 'deliveries'} will be sent again.`;
      if (n > 0) {
        range = body;
        start.disabled = false;
        start.textContent = more ? `Recover more than ${deliveries(n)}` : `Recover ${deliveries(n)}`;
        start.focus();
      }
    }),
  );
  start.addEventListener(
    'click',
    action(view, start, async () => {
      if (!range) return;
      const answer = await ask(range);
      if (!answer) return;
      close();
      started(answer.recovery_id);
    }),
  );
}

/**
 * The panel in `holder` that follows a recovery: `follow(recoveryId)` shows it and polls
 * its progress (a newer recovery takes over the panel); `done()` runs when it is done.
 */
export function recoveryProgress(view, holder, done) {
  const loader = view.loader();
  return function follow(recoveryId) {
    const signal = loader.start();
    const progress = h('p', { 'data-testid': 'recovery-progress' }, 'Recovery started…');
    const titleId = uid('recovery-title');
    replace(holder, h('section', { class: 'panel', 'aria-labelledby': titleId }, h('h2', { id: titleId }, 'Recovery'), progress));
    announce('Recovery started.');
    let polls = 0;
    const poll = async () => {
      let r;
      try {
        r = await session.api.recovery(recoveryId, { signal });
      } catch (error) {
        if (!isAbort(error)) progress.textContent = `The recovery's progress could not be read: ${errorText(error)}`;
        return;
      }
      const n = Number(r.queued) || 0;
      if (r.status === 'done') {
        progress.textContent = `Recovery done: ${deliveries(n)} queued again.`;
        announce(`Recovery done: ${deliveries(n)} queued again.`);
        await done();
      } else {
        progress.textContent = `Recovery running: ${deliveries(n)} queued so far…`;
        // Every second at first, then every 10 s: a long recovery is not polled hard.
        polls += 1;
        loader.repeat(poll, polls < 30 ? RECOVERY_POLL_MS : 10 * RECOVERY_POLL_MS);
      }
    };
    poll();
  };
}
