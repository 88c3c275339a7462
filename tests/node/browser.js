#!/usr/bin/env node
// Headless Chromium for the Perl integration tests (tests/lib/Browser.pm): runs the steps of a JSON script in one
// page and prints one JSON object on stdout.
//
//   node tests/node/browser.js SCRIPT.json
//
// SCRIPT.json: [step, ...] or {"steps": [step, ...], "context": {Playwright context options: "timezoneId",
// "locale", "httpCredentials"...}, "timeout": ms for the whole run (default 120000), "stepTimeout": ms (5000)}.
// Steps (one action each; "timeout" overrides stepTimeout where it applies):
//   {"goto": url, "width": 1280, "height": 800, "httpCredentials": {"username", "password"}, "waitUntil": "load"}
//       result {url, status, title, scrollWidth, clientWidth} (document.documentElement's, after load)
//   {"click": selector}   {"fill": [selector, value]}   {"check": selector}   {"uncheck": selector}
//   {"select": [selector, value]}   {"press": [selector, key]}   {"focus": selector}
//   {"waitFor": selector, "timeout": ms, "state": "visible"|"attached"|"hidden"|"detached"}
//   {"waitForText": [selector, text, ms]}            the element's textContent contains text
//   {"screenshot": path, "fullPage": true, "selector": css}        result: path
//   {"eval": "js expression"}                        result: its value (awaited when a promise; JSON-serialisable)
//   {"reload": true}   {"sleep": ms}
//   {"route": [urlGlob, body, status], "method": "POST", "contentType": "...", "headers": {...}, "times": n,
//    "file": path, "replace": {"from": "to"}, "raw": true}
//       from now on, requests matching the glob (and method) are answered here: body JSON-encoded (or sent as it is
//       with "raw", or the contents of "file" with its "replace" pairs applied); status default 200. The latest
//       matching route wins; another method falls back to earlier routes, then to the network.
//   {"unroute": urlGlob}                             removes the routes of that glob
//   {"requests": true | "url substring"}            result: the routed requests so far [{method, url, headers, body}]
// Output: {"ok": true, "results": [one per step: the value, or null], "errors": [page errors, console errors]}
//      or {"ok": false, "error": message, "step": index (0-based), "results": [...so far], "errors": [...]}
// Exit status 0 when ok, 1 otherwise. Environment: BROWSER_CHROMIUM (default /usr/bin/chromium).
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const EXECUTABLE = process.env.BROWSER_CHROMIUM || '/usr/bin/chromium';

function print(obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(code));
}

function arg(step, name, count) {
  const v = step[name];
  if (!Array.isArray(v) || v.length < count) throw new Error(`"${name}" needs an array of ${count}`);
  return v;
}

async function main() {
  if (process.argv.length !== 3) throw new Error('usage: node browser.js SCRIPT.json');
  let script = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  if (Array.isArray(script)) script = { steps: script };
  const steps = script.steps || [];
  const stepTimeout = script.stepTimeout || 5000;
  const results = [];
  const errors = [];
  const requests = [];
  let index = -1;
  let browser;

  const deadline = setTimeout(() => {
    print({ ok: false, error: `timed out after ${script.timeout || 120000} ms`, step: index, results, errors }, 1);
    if (browser) browser.close().catch(() => {});
  }, script.timeout || 120000);

  try {
    browser = await chromium.launch({
      executablePath: EXECUTABLE,
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--no-default-browser-check'],
    });
    const contextOptions = Object.assign({}, script.context || {});
    const withCredentials = steps.find((s) => s.goto !== undefined && s.httpCredentials);
    if (withCredentials && !contextOptions.httpCredentials) contextOptions.httpCredentials = withCredentials.httpCredentials;
    const first = steps.find((s) => s.goto !== undefined && s.width);
    contextOptions.viewport = { width: (first && first.width) || 1280, height: (first && first.height) || 800 };
    const context = await browser.newContext(contextOptions);
    const page = await context.newPage();
    page.setDefaultTimeout(stepTimeout);
    page.on('pageerror', (e) => errors.push({ type: 'pageerror', text: String(e && e.message ? e.message : e) }));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push({ type: 'console.' + m.type(), text: m.text() });
    });

    for (index = 0; index < steps.length; index++) {
      const step = steps[index];
      const timeout = step.timeout || stepTimeout;
      let result = null;
      if (step.goto !== undefined) {
        if (step.width) await page.setViewportSize({ width: step.width, height: step.height || 800 });
        const response = await page.goto(step.goto, { waitUntil: step.waitUntil || 'load', timeout: Math.max(timeout, 15000) });
        const size = await page.evaluate(() => ({
          title: document.title,
          scrollWidth: document.documentElement.scrollWidth,
          clientWidth: document.documentElement.clientWidth,
        }));
        result = Object.assign({ url: page.url(), status: response ? response.status() : null }, size);
      } else if (step.click !== undefined) {
        await page.click(step.click, { timeout });
      } else if (step.fill !== undefined) {
        const [selector, value] = arg(step, 'fill', 2);
        await page.fill(selector, String(value), { timeout });
      } else if (step.check !== undefined) {
        await page.check(step.check, { timeout });
      } else if (step.uncheck !== undefined) {
        await page.uncheck(step.uncheck, { timeout });
      } else if (step.select !== undefined) {
        const [selector, value] = arg(step, 'select', 2);
        await page.selectOption(selector, String(value), { timeout });
      } else if (step.press !== undefined) {
        const [selector, key] = arg(step, 'press', 2);
        await page.press(selector, key, { timeout });
      } else if (step.focus !== undefined) {
        await page.focus(step.focus, { timeout });
      } else if (step.waitFor !== undefined) {
        await page.waitForSelector(step.waitFor, { timeout, state: step.state || 'visible' });
      } else if (step.waitForText !== undefined) {
        const [selector, text, ms] = arg(step, 'waitForText', 2);
        await page.waitForFunction(
          ([sel, want]) => { const n = document.querySelector(sel); return !!n && n.textContent.includes(want); },
          [selector, String(text)], { timeout: ms || timeout });
      } else if (step.screenshot !== undefined) {
        const options = { path: step.screenshot, fullPage: !!step.fullPage, timeout: Math.max(timeout, 15000) };
        if (step.selector) await page.locator(step.selector).screenshot(options);
        else await page.screenshot(options);
        result = step.screenshot;
      } else if (step.eval !== undefined) {
        result = await page.evaluate(`(async () => (${step.eval}))()`);
        if (result === undefined) result = null;
      } else if (step.reload !== undefined) {
        await page.reload({ waitUntil: step.waitUntil || 'load', timeout: Math.max(timeout, 15000) });
      } else if (step.sleep !== undefined) {
        await new Promise((r) => setTimeout(r, step.sleep));
      } else if (step.route !== undefined) {
        const [glob, body, status] = arg(step, 'route', 1);
        let payload;
        if (step.file) {
          payload = fs.readFileSync(path.resolve(step.file), 'utf8');
          for (const [from, to] of Object.entries(step.replace || {})) payload = payload.split(from).join(to);
        } else {
          payload = step.raw ? String(body === undefined || body === null ? '' : body) : JSON.stringify(body === undefined ? null : body);
        }
        const contentType = step.contentType || (step.file ? 'text/html; charset=utf-8' : step.raw ? 'text/plain; charset=utf-8' : 'application/json');
        const method = step.method ? String(step.method).toUpperCase() : null;
        await page.route(glob, async (route) => {
          const request = route.request();
          if (method && request.method() !== method) return route.fallback();
          requests.push({ method: request.method(), url: request.url(), headers: await request.allHeaders(), body: request.postData() });
          return route.fulfill({ status: status || 200, contentType, headers: step.headers || {}, body: payload });
        }, step.times ? { times: step.times } : undefined);
      } else if (step.unroute !== undefined) {
        await page.unroute(step.unroute);
      } else if (step.requests !== undefined) {
        result = requests.filter((r) => step.requests === true || r.url.includes(String(step.requests)));
      } else {
        throw new Error('unknown step: ' + JSON.stringify(step));
      }
      results.push(result);
    }
    await browser.close();
    clearTimeout(deadline);
    print({ ok: true, results, errors }, 0);
  } catch (e) {
    clearTimeout(deadline);
    if (browser) await browser.close().catch(() => {});
    print({ ok: false, error: String(e && e.message ? e.message : e), step: index, results, errors }, 1);
  }
}

main().catch((e) => print({ ok: false, error: String(e && e.message ? e.message : e), step: -1, results: [] }, 1));
