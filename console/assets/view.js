// The view helper: what every screen shares. A screen is a View; starting a new one ends
// the previous one, which stops its timers, aborts its requests (one AbortController per
// view, one more per loader that can restart) and closes its dialogs. A cancelled
// request rejects with an AbortError, which is dropped silently: late answers never draw,
// announce or navigate.

import { h, replace, uid } from './dom.js';

export const APP_NAME = 'AgentVista Webhooks';

/** The live region for results and errors, and the holder of the current screen. */
export const statusRegion = h('div', { class: 'status', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true', 'data-testid': 'status' });
export const viewRegion = h('div', { class: 'view' });

/** True for the rejection of cancelled work (an aborted request, a stale answer). */
export function isAbort(error) {
  return Boolean(error) && error.name === 'AbortError';
}

export class View {
  #controller = new AbortController();
  #timers = new Set();

  /** Aborted when the view ends: pass it to every request whose answer only this view uses. */
  get signal() {
    return this.#controller.signal;
  }

  end() {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#controller.abort();
  }

  /** `fn` after `ms`, unless the view has ended by then. */
  #later(fn, ms) {
    if (this.signal.aborted) return null;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  #cancel(t) {
    clearTimeout(t);
    this.#timers.delete(t);
  }

  /** For a loader that can overlap itself (a refresh or a poll while one is in flight,
   * the chart switched to another period). `start()` begins a run: it aborts the previous
   * run's request, cancels its next poll, and gives the signal for the new run (aborted
   * too when the view ends). `repeat(fn, ms)` polls: the next run after `ms`, unless
   * another starts first. */
  loader() {
    let controller = null;
    let timer = null;
    return {
      start: () => {
        if (timer) this.#cancel(timer);
        timer = null;
        controller?.abort();
        controller = new AbortController();
        return AbortSignal.any([this.signal, controller.signal]);
      },
      repeat: (fn, ms) => {
        timer = this.#later(fn, ms);
      },
    };
  }

  /** `promise`'s outcome while this view is shown, an AbortError once it has ended. For
   * writes, which are never aborted (the server may already have acted on them): only
   * their answer is dropped. */
  async settle(promise) {
    try {
      return await promise;
    } finally {
      this.signal.throwIfAborted();
    }
  }
}

let current = null;

/** Ends the current view and starts the next one. */
export function startView() {
  current?.end();
  current = new View();
  return current;
}

/** Shows a result or an error in the live region (announced to screen readers). */
export function announce(message, kind = 'info') {
  statusRegion.className = `status ${kind}`;
  statusRegion.textContent = message;
}

export function clearStatus() {
  statusRegion.className = 'status';
  statusRegion.textContent = '';
}

export function errorText(error) {
  return error && typeof error.message === 'string' && error.message ? error.message : 'Something went wrong.';
}

/** Renders a view's nodes and moves focus to its heading (for keyboard and screen readers). */
export function show(title, ...nodes) {
  document.title = `${title} — ${APP_NAME}`;
  replace(viewRegion, ...nodes);
  const target = viewRegion.querySelector('[data-autofocus]') || viewRegion.querySelector('h1');
  if (target) {
    if (!target.hasAttribute('tabindex') && target.tagName === 'H1') target.setAttribute('tabindex', '-1');
    target.focus();
  }
}

export function btn(label, attrs = {}) {
  return h('button', { type: 'button', ...attrs }, label);
}

/** Runs an action from a button of `view`: ignores it meanwhile (without `disabled`, so
 * focus stays on it, e.g. when a dialog it opened closes), shows any error while the view
 * is shown, never throws. */
export function action(view, button, fn) {
  return async (event) => {
    if (event) event.preventDefault();
    if (button.disabled || button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    button.setAttribute('aria-busy', 'true');
    try {
      await fn();
    } catch (error) {
      // A 401 has already signed out (ending the view), with its own message.
      if (!isAbort(error) && !view.signal.aborted) announce(errorText(error), 'error');
    } finally {
      button.removeAttribute('aria-disabled');
      button.removeAttribute('aria-busy');
    }
  };
}

// ---------------------------------------------------------------- navigation

let router = () => {};
let pendingAnnouncement = null;

/** What `navigate` calls when the address does not change (there is no hashchange then). */
export function setRouter(route) {
  router = route;
}

/** Goes to `hash`, announcing `message` on the screen it shows. */
export function navigate(hash, message) {
  pendingAnnouncement = message || null;
  if (location.hash === hash) router();
  else location.hash = hash;
}

/** The message `navigate` left for the next screen, once. */
export function takeAnnouncement() {
  const message = pendingAnnouncement;
  pendingAnnouncement = null;
  return message;
}

// ---------------------------------------------------------------- dialogs

/** A modal <dialog> owned by `view`: Escape or Cancel closes it, so does the view's end;
 * focus returns where it was only while the view is shown (a new view places focus). */
export function openDialog(view, title, build) {
  const opener = document.activeElement;
  const titleId = uid('dialog-title');
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId });
  const close = () => {
    if (dialog.open) dialog.close();
  };
  view.signal.addEventListener('abort', close);
  const closed = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      view.signal.removeEventListener('abort', close);
      if (!view.signal.aborted) {
        const back = opener && opener.isConnected ? opener : viewRegion.querySelector('h1');
        if (back && typeof back.focus === 'function') back.focus();
      }
      resolve();
    });
  });
  dialog.append(h('h2', { id: titleId }, title), ...build(close));
  document.body.append(dialog);
  dialog.showModal();
  return { close, closed };
}

/** Asks a yes/no question; resolves true only on the confirm button, and rejects with an
 * AbortError if the view ended meanwhile (its answer is stale: a newer view is shown). */
export async function confirmDialog(view, { title, body, confirmLabel, danger = false }) {
  let confirmed = false;
  const { closed } = openDialog(view, title, (close) => {
    const cancel = btn('Cancel', { class: 'secondary', 'data-autofocus': '' });
    const ok = btn(confirmLabel, { class: danger ? 'danger' : 'primary' });
    cancel.addEventListener('click', close);
    ok.addEventListener('click', () => {
      confirmed = true;
      close();
    });
    queueMicrotask(() => cancel.focus());
    return [h('div', { class: 'dialog-body' }, ...body), h('div', { class: 'actions' }, cancel, ok)];
  });
  return view.settle(closed.then(() => confirmed));
}
