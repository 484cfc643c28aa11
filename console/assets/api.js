// The console is just another client of the public API: every call goes through here,
// with the key as a bearer token. The key lives only in sessionStorage (this tab, until
// it closes or the user signs out), never in a URL, a cookie or localStorage.

const STORAGE_KEY = 'avw.console.key';

// Only when sessionStorage itself is unavailable (some embedding contexts block it): the
// key then lives in this page's memory and is gone at the next load.
let memoryKey = null;

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function storedKey() {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return memoryKey;
  }
}

export function storeKey(key) {
  try {
    window.sessionStorage.setItem(STORAGE_KEY, key);
  } catch {
    memoryKey = key;
  }
}

export function forgetKey() {
  memoryKey = null;
  try {
    window.sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage unavailable: nothing was kept
  }
}

let onUnauthorized = () => {};
/** Called (once per failing request) when the API answers 401 to the stored key. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** A path from segments, each percent-encoded. */
export function path(...segments) {
  return `/${segments.map((s) => encodeURIComponent(String(s))).join('/')}`;
}

/** A query string from the non-empty values of `params` (with its `?`, or ''). */
export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') q.set(name, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}

/**
 * One API call: resolves to the parsed JSON body (or null for 204), rejects with an
 * ApiError whose message is the API's own `error.message` (status 0 for a network
 * failure). `key` overrides the stored key (used to check a key before keeping it).
 * Once `signal` is aborted the call rejects with its AbortError, whatever the API
 * answered: the caller has moved on and the answer is stale.
 */
export async function request(method, url, { body, key, signal } = {}) {
  const bearer = key ?? storedKey();
  const headers = { Accept: 'application/json' };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    signal?.throwIfAborted();
    throw new ApiError(0, 'network', 'Network error: the API could not be reached. Check your connection and try again.');
  }
  let data = null;
  const text = await response.text().catch(() => '');
  signal?.throwIfAborted();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;
  const error = data && typeof data === 'object' ? data.error : null;
  let message;
  if (error && typeof error.message === 'string') message = error.message;
  else if (data && typeof data.message === 'string') message = data.message; // API Gateway's own shape
  else message = `The API answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}.`;
  const apiError = new ApiError(
    response.status,
    error && typeof error.code === 'string' ? error.code : `http_${response.status}`,
    message,
    error && typeof error.field === 'string' ? error.field : undefined,
  );
  if (response.status === 401 && key === undefined) {
    onUnauthorized(apiError);
    // The sign-out it caused ended the caller's view.
    signal?.throwIfAborted();
  }
  throw apiError;
}

/** Calls scoped to one organisation. Each takes `options` last: `{ signal }` to cancel it. */
export function orgApi(org) {
  const base = (...rest) => path('org', org, 'webhooks', ...rest);
  const get = (url, options) => request('GET', url, options);
  const send = (method, url, body, options) => request(method, url, { ...options, body });
  return {
    listEndpoints: (options) => get(base('endpoints'), options),
    getEndpoint: (id, options) => get(base('endpoints', id), options),
    createEndpoint: (body, options) => send('POST', base('endpoints'), body, options),
    updateEndpoint: (id, body, options) => send('PATCH', base('endpoints', id), body, options),
    deleteEndpoint: (id, options) => send('DELETE', base('endpoints', id), undefined, options),
    rotateSecret: (id, options) => send('POST', base('endpoints', id, 'rotate-secret'), undefined, options),
    sendTest: (id, options) => send('POST', base('endpoints', id, 'test'), undefined, options),
    stats: (id, window, options) => get(base('endpoints', id, 'stats') + query({ window }), options),
    recover: (id, body, options) => send('POST', base('endpoints', id, 'recover'), body, options),
    recovery: (id, options) => get(base('recoveries', id), options),
    searchDeliveries: (params, options) => get(base('deliveries') + query(params), options),
    getDelivery: (id, options) => get(base('deliveries', id), options),
    retryDelivery: (id, options) => send('POST', base('deliveries', id, 'retry'), undefined, options),
  };
}

export function getKeyInfo(key, options) {
  return request('GET', '/key', { ...options, key });
}
