// Shared set-up for the console's browser tests: a webhooks-local server of our own, an
// HTTPS receiver it trusts (self-signed certificate made with openssl), Chromium driven by
// playwright-core, and pages that fail the test on any console or page error.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

export const ORG = 'demo';

export function localBin() {
  if (process.env.AVW_LOCAL_BIN) return process.env.AVW_LOCAL_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache', 'avw-target');
  return join(target, 'debug', 'webhooks-local');
}

/** Polls `fn` until it returns without throwing (and returns its value), or rethrows its
 * last error after `timeout` ms. */
export async function eventually(fn, { timeout = 20000, interval = 100 } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > end) throw error;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** A temporary directory holding a self-signed certificate for 127.0.0.1. */
export function makeCert() {
  const dir = mkdtempSync(join(tmpdir(), 'avw-console-'));
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    { stdio: 'ignore' },
  );
  return { dir, key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem') };
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/** An HTTPS receiver recording every request; its answer's status and body can be changed. */
export async function startReceiver(cert) {
  const state = { status: 200, body: 'ok', requests: [] };
  const server = createHttpsServer({ key: readFileSync(cert.key), cert: readFileSync(cert.cert) }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      state.requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(state.status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(state.body);
    });
  });
  const port = await listen(server);
  return {
    url: `https://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    answer(status, body = state.body) {
      state.status = status;
      state.body = body;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** A plain HTTP server on another origin serving `html()` at `/` (the iframe host). */
export async function startHost() {
  let page = '<!doctype html><title>empty</title>';
  const server = createHttpServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  const port = await listen(server);
  return {
    origin: `http://127.0.0.1:${port}`,
    set(html) {
      page = html;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** Starts webhooks-local on a free port with a fresh admin key. */
export async function startServer({ cert, frameAncestors } = {}) {
  const key = `avk_test_${randomBytes(18).toString('hex')}`;
  const args = ['--listen', '127.0.0.1:0', '--key', `${ORG}:admin:${key}`];
  if (cert) args.push('--root-cert', cert.cert);
  const env = { ...process.env, RETRY_SCHEDULE: '1,1', CIRCUIT_BREAKER_THRESHOLD: '3' };
  if (frameAncestors) env.CONSOLE_FRAME_ANCESTORS = frameAncestors;
  else delete env.CONSOLE_FRAME_ANCESTORS;
  const proc = spawn(localBin(), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webhooks-local did not start:\n${output}`)), 20000);
    const onData = (chunk) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`webhooks-local exited (${code}):\n${output}`));
    });
    proc.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  async function api(method, path, body, bearer = key) {
    const res = await fetch(base + path, {
      method,
      headers: { Authorization: `Bearer ${bearer}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  return {
    base,
    key,
    api,
    /** The API call's JSON, asserting its status. */
    async call(method, path, body, status) {
      const res = await api(method, path, body);
      if (status !== undefined) assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
      return res.body;
    },
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
      }),
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A page that records console errors and uncaught errors. `allow(re)` names an error the
 * test provokes on purpose; `assertClean()` fails on anything else.
 */
export async function watchedPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const errors = [];
  const allowed = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()} @ ${msg.location()?.url ?? ''}`);
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.allow = (re) => allowed.push(re);
  page.assertClean = () => {
    const unexpected = errors.filter((e) => !allowed.some((re) => re.test(e)));
    assert.deepEqual(unexpected, [], 'console or page errors');
  };
  return page;
}

/** Runs `test` with a watched page in a fresh browser context (`options`), closed after. */
export async function withPage(browser, test, options = {}) {
  const context = await browser.newContext(options);
  try {
    return await test(await watchedPage(context), context);
  } finally {
    await context.close();
  }
}

export const axeSource = () => readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Runs axe on the page (its context must bypass CSP); fails on serious or critical issues. */
export async function assertAccessible(page, what) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.addScriptTag({ content: axeSource() });
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${what}: accessibility violations\n${JSON.stringify(bad, null, 2)}`);
}

/** Verifies `X-AgentVista-Signature` of a recorded request against `secret`. */
export function signatureValid(request, secret) {
  const header = request.headers['x-agentvista-signature'] || '';
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=')));
  const expected = createHmac('sha256', secret).update(`${parts.t}.${request.body}`).digest('hex');
  return parts.v1 === expected;
}

export function screenshotDir() {
  return process.env.AVW_SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'avw-shots-'));
}

/** Signs in through the form. */
export async function signIn(page, base, key) {
  await page.goto(`${base}/console/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
}

export function cleanupDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}
