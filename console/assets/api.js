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
 */
export async function request(method, url, { body, key } = {}) {
  const bearer = key ?? storedKey();
  const headers = { Accept: 'application/json' };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, 'network', 'Network error: the API could not be reached. Check your connection and try again.');
  }
  let data = null;
  const text = await response.text().catch(() => '');
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
  if (response.status === 401 && key === undefined) onUnauthorized(apiError);
  throw apiError;
}

/** Calls scoped to one organisation. */
export function orgApi(org) {
  const base = (...rest) => path('org', org, 'webhooks', ...rest);
  return {
    listEndpoints: () => request('GET', base('endpoints')),
    createEndpoint: (body) => request('POST', base('endpoints'), { body }),
    updateEndpoint: (id, body) => request('PATCH', base('endpoints', id), { body }),
    deleteEndpoint: (id) => request('DELETE', base('endpoints', id)),
    rotateSecret: (id) => request('POST', base('endpoints', id, 'rotate-secret')),
    sendTest: (id) => request('POST', base('endpoints', id, 'test')),
    stats: (id, window) => request('GET', base('endpoints', id, 'stats') + query({ window })),
    recover: (id, body) => request('POST', base('endpoints', id, 'recover'), { body }),
    recovery: (id) => request('GET', base('recoveries', id)),
    searchDeliveries: (params) => request('GET', base('deliveries') + query(params)),
    getDelivery: (id) => request('GET', base('deliveries', id)),
    retryDelivery: (id) => request('POST', base('deliveries', id, 'retry')),
  };
}

export function getKeyInfo(key) {
  return request('GET', '/key', { key });
}
