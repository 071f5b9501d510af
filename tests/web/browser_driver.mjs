// Browser driver for tests/web/test_browser.py: real headless Chromium (Debian's
// /usr/bin/chromium) through playwright-core, with an injected EIP-1193 wallet backed by a
// test key (viem) and anvil. Commands arrive as JSON lines on stdin, one answer per line
// on stdout: {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
//
// The wallet lives here, in Node, as a browser extension would live outside the page: the
// page reaches it through `window.ethereum`, whose `request` crosses into this process by
// a Playwright binding (so the page's Content-Security-Policy applies to the page only).
import { createInterface } from "node:readline";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const root = process.env.QEV_ROOT;
const { chromium } = require(join(root, "node_modules", "playwright-core"));
const viem = await import(join(root, "node_modules", "viem", "_esm", "index.js"));
const accounts = await import(join(root, "node_modules", "viem", "_esm", "accounts", "index.js"));

let browser;
let context;
let page;
let wallet;
let artifacts;
let shot = 0;
const requests = [];
const problems = [];

class Wallet {
  constructor({ key, rpc, chainId }) {
    this.account = accounts.privateKeyToAccount(key);
    this.rpcUrl = rpc;
    this.chainId = chainId;
    this.realChainId = chainId;
    this.calls = [];
    this.reject = new Set();
    this.authorized = false;
    const chain = viem.defineChain({
      id: chainId,
      name: "anvil",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [rpc] } },
    });
    this.client = viem.createWalletClient({ account: this.account, chain, transport: viem.http(rpc) });
  }

  async rpc(method, params) {
    const response = await fetch(this.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    const body = await response.json();
    if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code, data: body.error.data });
    return body.result;
  }

  async request(method, params) {
    this.calls.push(method);
    if (this.reject.has(method)) throw Object.assign(new Error("User rejected the request."), { code: 4001 });
    switch (method) {
      case "eth_requestAccounts":
        this.authorized = true; // remembered across reloads, as a wallet remembers a site
        return [this.account.address];
      case "eth_accounts":
        return this.authorized ? [this.account.address] : [];
      case "eth_chainId":
        return viem.toHex(this.chainId);
      case "net_version":
        return String(this.chainId);
      case "wallet_switchEthereumChain": {
        const wanted = Number(params[0].chainId);
        if (wanted !== this.realChainId) throw Object.assign(new Error("Unrecognized chain"), { code: 4902 });
        this.chainId = wanted;
        await emit("chainChanged", viem.toHex(wanted));
        return null;
      }
      case "eth_signTypedData_v4": {
        const [address, json] = params;
        if (viem.getAddress(address) !== this.account.address) throw new Error(`unknown account ${address}`);
        const typed = typeof json === "string" ? JSON.parse(json) : json;
        const types = { ...typed.types };
        delete types.EIP712Domain;
        const message = {};
        for (const field of types[typed.primaryType]) {
          const v = typed.message[field.name];
          message[field.name] = /^u?int/.test(field.type) ? BigInt(v) : v;
        }
        return this.account.signTypedData({ domain: typed.domain, types, primaryType: typed.primaryType, message });
      }
      case "eth_sendTransaction": {
        const [tx] = params;
        if (viem.getAddress(tx.from) !== this.account.address) throw new Error(`unknown account ${tx.from}`);
        if (this.chainId !== this.realChainId) throw new Error("the wallet is on another network");
        return this.client.sendTransaction({ to: tx.to, data: tx.data, value: tx.value ? BigInt(tx.value) : 0n });
      }
      default:
        return this.rpc(method, params);
    }
  }
}

const PROVIDER = `
(() => {
  const listeners = {};
  const provider = {
    isQevTestWallet: true,
    async request({ method, params }) {
      const answer = JSON.parse(await window.__qevWallet(method, JSON.stringify(params === undefined ? [] : params)));
      if (answer.error) {
        const e = new Error(answer.error.message);
        e.code = answer.error.code;
        throw e;
      }
      return answer.result;
    },
    on(event, fn) { (listeners[event] ||= []).push(fn); return provider; },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); return provider; },
    __emit(event, value) { for (const fn of listeners[event] || []) fn(value); },
  };
  Object.defineProperty(window, "ethereum", { value: provider, configurable: false, writable: false });
})();
`;

async function emit(event, value) {
  if (page) await page.evaluate(([e, v]) => window.ethereum.__emit(e, v), [event, value]);
}

async function screenshot(name) {
  shot += 1;
  const file = join(artifacts, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const commands = {
  async open({ url, key, rpc, chainId, artifactsDir }) {
    artifacts = artifactsDir;
    mkdirSync(artifacts, { recursive: true });
    wallet = new Wallet({ key, rpc, chainId });
    browser = await chromium.launch({
      executablePath: process.env.QEV_CHROMIUM || "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
    await context.exposeBinding("__qevWallet", async (_source, method, paramsJson) => {
      try {
        return JSON.stringify({ result: await wallet.request(method, JSON.parse(paramsJson)) });
      } catch (e) {
        return JSON.stringify({ error: { code: e.code ?? -32603, message: e.shortMessage ?? e.message } });
      }
    });
    await context.addInitScript(PROVIDER);
    page = await context.newPage();
    page.on("request", (r) => requests.push({ method: r.method(), url: r.url(), body: r.postData() ?? null }));
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(url);
    await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
    return true;
  },
  async reload() {
    await page.reload();
    await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
    return true;
  },
  async click({ selector }) {
    await page.click(selector, { timeout: 15_000 });
    return true;
  },
  async fill({ selector, value }) {
    await page.fill(selector, value, { timeout: 15_000 });
    return true;
  },
  async select({ selector, value }) {
    await page.selectOption(selector, value, { timeout: 15_000 });
    return true;
  },
  async text({ selector }) {
    return page.textContent(selector, { timeout: 15_000 });
  },
  async count({ selector }) {
    return page.locator(selector).count();
  },
  async wait({ selector, contains, timeout }) {
    const locator = page.locator(selector, contains ? { hasText: contains } : {});
    await locator.first().waitFor({ state: "visible", timeout: timeout ?? 60_000 });
    return locator.first().textContent();
  },
  async message({ timeout }) {
    // the settled message: wait until it is an error or ok (info means still working)
    await page.waitForSelector("#message[data-kind=error], #message[data-kind=ok]", { timeout: timeout ?? 120_000 });
    return page.evaluate(() => {
      const el = document.getElementById("message");
      return { kind: el.dataset.kind, text: el.textContent };
    });
  },
  async screenshot({ name }) {
    return screenshot(name);
  },
  async download({ selector }) {
    const [download] = await Promise.all([page.waitForEvent("download", { timeout: 15_000 }), page.click(selector)]);
    const file = join(artifacts, download.suggestedFilename());
    await download.saveAs(file);
    return { name: download.suggestedFilename(), content: readFileSync(file, "utf8") };
  },
  async evaluate({ expression }) {
    return page.evaluate(expression);
  },
  async set_chain({ chainId }) {
    wallet.chainId = chainId;
    await emit("chainChanged", viem.toHex(chainId));
    return true;
  },
  async reject({ methods }) {
    wallet.reject = new Set(methods);
    return true;
  },
  async log() {
    const out = { requests: requests.splice(0), wallet: wallet.calls.splice(0), problems: problems.splice(0) };
    return out;
  },
  async close() {
    if (browser) await browser.close();
    browser = undefined;
    return true;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  let answer;
  try {
    answer = { ok: true, value: (await commands[command.op](command)) ?? null };
  } catch (e) {
    answer = { ok: false, error: `${e.name}: ${e.message}` };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (command.op === "close") break;
}
if (browser) await browser.close();
