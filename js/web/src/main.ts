/**
 * The holder's page (docs/WEB.md): connect an EIP-1193 wallet, check the auction against
 * the chain, bid (sealed in this page), replace, cancel, follow the outcome and claim.
 *
 * The unsealed bid exists only here and in the wallet that signs it: the service receives
 * the HPKE ciphertext and the SealedBid signature, nothing else.
 */
import {
  type Allocation,
  type AuctionDocument,
  AuctionKeyMismatchError,
  type BidSigner,
  type ChainReader,
  InputError,
  QevClient,
  type QevTypedData,
  type Receipt,
  ReceiptMismatchError,
  type RedemptionRequest,
  ServiceProblemError,
  ServiceUnreachableError,
  SignerMismatchError,
  claimCalldata,
  formatDiscount,
  formatShares,
  incrementNonceCalldata,
  parseDiscount,
  parseShares,
  preview,
  readIsClaimed,
  readNonce,
  readRequests,
  readSharePrice,
  readVault,
  sealBid,
} from "@qev/sdk";
import {
  type Address,
  type EIP1193Provider,
  type Hex,
  createPublicClient,
  createWalletClient,
  custom,
  getAddress,
  http,
  toHex,
} from "viem";
import { byId, clear, h, setText } from "./dom.js";
import { type JournalEntry, loadJournal, recordBid, updateEntry } from "./journal.js";

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

const SERVICE = document.querySelector<HTMLMetaElement>('meta[name="qev-service"]')?.content.trim() ?? "";

interface Wallet {
  provider: EIP1193Provider;
  account: Address;
  chainId: number;
}

interface WebConfig {
  web_bundle_sha256?: string | null;
  rpc_url?: string | null;
}

const state = {
  auction: null as AuctionDocument | null,
  config: {} as WebConfig,
  wallet: null as Wallet | null,
  subscribed: false,
  requests: [] as RedemptionRequest[],
  price: null as bigint | null,
  vault: null as Address | null,
  replacing: null as JournalEntry | null,
  busy: false,
  shownReceipt: null as Receipt | null,
};

// --- messages -----------------------------------------------------------------------

function say(kind: "error" | "info" | "ok", text: string): void {
  const el = byId("message");
  el.textContent = text;
  el.className = `message ${kind}`;
  el.dataset.kind = kind;
  el.hidden = false;
}

function hush(): void {
  const el = byId("message");
  el.hidden = true;
  el.textContent = "";
  delete el.dataset.kind;
}

const PROBLEMS: Record<string, string> = {
  auction_closed: "Bidding for this auction has closed.",
  not_controller: "Your address is not the controller of this request on-chain.",
  stale_envelope: "This exact envelope was replaced or cancelled before; seal the bid again.",
  stale_cancel: "The bid you tried to cancel is no longer the live one.",
  not_found: "The service has no such bid.",
  rate_limited: "Too many requests; wait a moment and try again.",
  chain_unavailable: "The service could not read the chain; nothing was stored. Try again.",
  store_unavailable: "The service could not store the bid; nothing was stored. Try again.",
  bad_signature: "The service could not verify the signature.",
  malformed: "The service refused the request as malformed.",
  unknown_auction: "The service does not know this auction.",
};

const REASONS: Record<string, string> = {
  undecryptable: "the envelope could not be opened with the auction key",
  malformed_plaintext: "the sealed content was malformed",
  envelope_mismatch: "the sealed bid names another auction or request",
  bad_signature: "the inner bid signature is invalid",
  signer_not_controller: "the inner bid was signed by another address",
  basis_point_out_of_range: "the discount was out of range",
  zero_shares: "the bid was for zero shares",
  stale_nonce: "the nonce changed on-chain (an incrementNonce cancelled it)",
  not_matured: "the request matures after this auction",
  no_pending_shares: "the request had no pending shares at the snapshot",
  not_controller: "the request is controlled by another address",
  below_min_fill: "the liquidity left for it was below the minimum fill",
  liquidity_exhausted: "the liquidity ran out before this bid",
};

function rejectedInWallet(e: unknown): boolean {
  for (let x: any = e; x; x = x.cause) {
    if (x.code === 4001 || x.name === "UserRejectedRequestError") return true;
  }
  return false;
}

function explain(e: unknown): string {
  if (e instanceof ServiceUnreachableError) {
    return "The service cannot be reached. Nothing was signed or sent; try again when it is back.";
  }
  if (e instanceof ServiceProblemError) {
    return `${PROBLEMS[e.code] ?? "The service refused the request."} (${e.code}: ${e.detail})`;
  }
  if (e instanceof InputError) return e.message;
  if (e instanceof AuctionKeyMismatchError) return `Refusing to seal: ${e.message}`;
  if (e instanceof ReceiptMismatchError) return `The service's answer does not check out: ${e.message}`;
  if (e instanceof SignerMismatchError) return `Your wallet signed with another account: ${e.message}`;
  if (rejectedInWallet(e)) return "You rejected the request in your wallet. Nothing was sent.";
  const msg = (e as { shortMessage?: string; message?: string }) ?? {};
  return msg.shortMessage ?? msg.message ?? String(e);
}

// --- chain and service access ----------------------------------------------------------

function onAuctionChain(): boolean {
  return !!state.wallet && !!state.auction && state.wallet.chainId === state.auction.chain_id;
}

/** Chain reads: the wallet when it is on the auction's chain, else the configured public RPC. */
function reader(): ChainReader | undefined {
  if (onAuctionChain()) return createPublicClient({ transport: custom(state.wallet!.provider) });
  if (state.config.rpc_url) return createPublicClient({ transport: http(state.config.rpc_url) });
  return undefined;
}

function client(): QevClient {
  return new QevClient({ baseUrl: SERVICE, chain: reader() });
}

function walletSigner(onSign?: (n: number) => void): BidSigner {
  const w = state.wallet!;
  const wc = createWalletClient({ account: w.account, transport: custom(w.provider) });
  let n = 0;
  return {
    address: w.account,
    signTypedData: (typedData: QevTypedData) => {
      n += 1;
      onSign?.(n);
      return wc.signTypedData({ account: w.account, ...typedData } as Parameters<typeof wc.signTypedData>[0]);
    },
  };
}

async function sendTx(to: Address, data: Hex, label: string): Promise<Hex> {
  const w = state.wallet!;
  say("info", `Confirm ${label} in your wallet…`);
  const hash = (await w.provider.request({
    method: "eth_sendTransaction",
    params: [{ from: w.account, to, data }],
  } as never)) as Hex;
  say("info", `${label}: transaction ${hash} sent, waiting for it to be mined…`);
  const pc = createPublicClient({ transport: custom(w.provider), pollingInterval: 500 });
  const receipt = await pc.waitForTransactionReceipt({ hash, pollingInterval: 500, timeout: 120_000 });
  if (receipt.status !== "success") throw new Error(`${label}: transaction ${hash} reverted`);
  return hash;
}

function wrongNetworkText(): string {
  return (
    `Wrong network: your wallet is on chain ${state.wallet!.chainId}, this auction is on chain ` +
    `${state.auction!.chain_id}. Switch networks in your wallet (or press “Switch network”); nothing was sent.`
  );
}

// --- the auction ---------------------------------------------------------------------------

const now = () => Math.floor(Date.now() / 1000);

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const hms = [Math.floor((seconds % 86_400) / 3600), Math.floor((seconds % 3600) / 60), seconds % 60]
    .map((x) => x.toString().padStart(2, "0"))
    .join(":");
  return d > 0 ? `${d} d ${hms}` : hms;
}

function utc(seconds: number | bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", " UTC").replace("T", " ");
}

function auctionOpen(): boolean {
  const a = state.auction;
  return !!a && a.status === "open" && now() < a.closes_at;
}

function tick(): void {
  const a = state.auction;
  if (!a) return;
  const left = a.closes_at - now();
  if (a.status !== "open" || left <= 0) setText("countdown", "closed", "bad");
  else setText("countdown", duration(left), "");
}

function renderAuction(): void {
  const a = state.auction;
  if (!a) {
    setText("auction-id", "unavailable", "bad");
    return;
  }
  setText("auction-id", `${a.auction_id} (${utc(a.auction_id)})`);
  setText("auction-status", a.status);
  setText("public-key", a.public_key ?? "not announced yet");
  setText("receipt-signer", a.receipt_signer);
  const hash = a.web_bundle_sha256 ?? state.config.web_bundle_sha256;
  if (hash) setText("bundle-hash", hash);
  tick();
  byId<HTMLButtonElement>("submit").disabled = !auctionOpen();
}

async function loadAuction(): Promise<boolean> {
  try {
    state.auction = await client().auction();
  } catch (e) {
    say("error", explain(e));
    return false;
  }
  renderAuction();
  return true;
}

async function checkKey(): Promise<void> {
  const a = state.auction;
  if (!a) return;
  const r = reader();
  if (!r) {
    setText("key-check", "connect a wallet on the auction's network to check auctionKey(T)", "muted");
    setText("signer-check", "");
    return;
  }
  try {
    await new QevClient({ baseUrl: SERVICE, chain: r }).pin(a);
    setText("key-check", "✓ matches auctionKey(T) on-chain", "ok");
    setText("signer-check", "✓ receiptSigner() on-chain", "ok");
  } catch (e) {
    setText("key-check", `✗ ${explain(e)}`, "bad");
  }
}

// --- the wallet ----------------------------------------------------------------------------

function renderWallet(): void {
  const w = state.wallet;
  const sw = byId<HTMLButtonElement>("switch-network");
  if (!w) {
    setText("account", "no wallet connected", "muted");
    sw.hidden = true;
    return;
  }
  const wrong = !!state.auction && w.chainId !== state.auction.chain_id;
  setText("account", `${w.account} · chain ${w.chainId}${wrong ? " (wrong network)" : ""}`, wrong ? "bad" : "");
  byId("connect").textContent = "Reconnect";
  sw.hidden = !wrong;
}

async function readWallet(provider: EIP1193Provider, ask: boolean): Promise<void> {
  const accounts = (await provider.request({ method: ask ? "eth_requestAccounts" : "eth_accounts" } as never)) as string[];
  if (!accounts.length) {
    state.wallet = null;
    return;
  }
  const chainId = Number(await provider.request({ method: "eth_chainId" } as never));
  state.wallet = { provider, account: getAddress(accounts[0]!), chainId };
}

async function connect(): Promise<void> {
  hush();
  const provider = window.ethereum;
  if (!provider) {
    say("error", "No browser wallet found: install an EIP-1193 wallet (such as MetaMask) and reload the page.");
    return;
  }
  try {
    await readWallet(provider, true);
  } catch (e) {
    say("error", explain(e));
    return;
  }
  if (!state.subscribed && typeof provider.on === "function") {
    state.subscribed = true;
    const again = () => void readWallet(provider, false).then(afterWalletChange, (e) => say("error", explain(e)));
    provider.on("accountsChanged", again);
    provider.on("chainChanged", again);
  }
  await afterWalletChange();
}

async function afterWalletChange(): Promise<void> {
  renderWallet();
  state.vault = null;
  if (state.wallet && state.auction && state.wallet.chainId !== state.auction.chain_id) say("error", wrongNetworkText());
  await checkKey();
  await loadRequests();
  await renderJournal();
}

async function switchNetwork(): Promise<void> {
  if (!state.wallet || !state.auction) return;
  try {
    await state.wallet.provider.request({
      method: "wallet_switchEthereumChain",
      params: [{ chainId: toHex(state.auction.chain_id) }],
    } as never);
    await readWallet(state.wallet.provider, false);
    hush();
    await afterWalletChange();
  } catch (e) {
    say("error", explain(e));
  }
}

// --- requests and the form -----------------------------------------------------------------

function eligible(r: RedemptionRequest): boolean {
  return !!state.auction && r.pendingShares > 0n && r.redemptionTimestamp <= BigInt(state.auction.auction_id);
}

async function loadRequests(): Promise<void> {
  const r = onAuctionChain() ? reader() : undefined;
  if (!r || !state.wallet || !state.auction) {
    state.requests = [];
    renderRequests();
    return;
  }
  try {
    state.vault ??= await readVault(r, state.auction.settlement);
    state.requests = await readRequests(r, state.vault, state.wallet.account);
    state.price = await readSharePrice(r, state.vault);
  } catch (e) {
    say("error", `Could not read your requests from the chain: ${explain(e)}`);
  }
  renderRequests();
}

function renderRequests(): void {
  const body = byId("requests-body");
  const select = byId<HTMLSelectElement>("request");
  const previous = select.value;
  clear(body);
  clear(select);
  const table = byId("requests");
  if (!state.wallet) {
    setText("requests-empty", "Connect a wallet to read your requests from the vault.");
    byId("requests-empty").hidden = false;
    table.hidden = true;
    return;
  }
  if (!state.requests.length) {
    setText("requests-empty", onAuctionChain() ? "This account has no redemption request in the vault." : "Switch to the auction's network to read your requests.");
    byId("requests-empty").hidden = false;
    table.hidden = true;
  } else {
    byId("requests-empty").hidden = true;
    table.hidden = false;
  }
  for (const r of state.requests) {
    const ok = eligible(r);
    const why = ok ? "yes" : r.pendingShares === 0n ? "no: nothing pending" : "no: matures after T";
    body.append(
      h(
        "tr",
        { "data-redemption": r.id.toString() },
        h("td", {}, `#${r.id}`),
        h("td", { class: "pending" }, formatShares(r.pendingShares, 18)),
        h("td", {}, utc(r.redemptionTimestamp)),
        h("td", { class: ok ? "ok" : "muted" }, why),
      ),
    );
    if (ok) select.append(h("option", { value: r.id.toString() }, `#${r.id} · ${formatShares(r.pendingShares)} sUSDai pending`));
  }
  if (!select.options.length) select.append(h("option", { value: "" }, "no request can take part in this auction"));
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
  updatePreview();
}

function selectedRequest(): RedemptionRequest | undefined {
  const id = byId<HTMLSelectElement>("request").value;
  return state.requests.find((r) => r.id.toString() === id);
}

function readForm(): { request: RedemptionRequest; shares: bigint; bp: bigint } {
  if (!state.auction) throw new InputError("The auction is not loaded (is the service up?). Nothing was sent.");
  if (!state.wallet) throw new InputError("Connect a wallet first.");
  if (state.wallet.chainId !== state.auction.chain_id) throw new InputError(wrongNetworkText());
  if (!auctionOpen()) throw new InputError("Bidding for this auction has closed.");
  const request = selectedRequest();
  if (!request) throw new InputError("Choose one of your requests that can take part in this auction.");
  const shares = parseShares(byId<HTMLInputElement>("shares").value);
  if (shares === 0n) throw new InputError("Enter a number of shares greater than 0.");
  if (shares > request.pendingShares) {
    throw new InputError(
      `Request #${request.id} has only ${formatShares(request.pendingShares, 18)} sUSDai pending: bid at most that.`,
    );
  }
  const bp = parseDiscount(byId<HTMLInputElement>("discount").value);
  return { request, shares, bp };
}

function updatePreview(): void {
  const out = byId("preview");
  try {
    const shares = parseShares(byId<HTMLInputElement>("shares").value);
    const bp = parseDiscount(byId<HTMLInputElement>("discount").value);
    if (shares === 0n || state.price === null) {
      out.textContent = "";
      return;
    }
    const { burnt, payout } = preview(shares, bp, state.price);
    out.textContent =
      `If filled in full: you give up ${formatShares(burnt)} sUSDai (${formatDiscount(bp)} %) and receive ` +
      `${formatShares(payout, 2)} USDai now, at ${formatShares(state.price)} USDai per share.`;
  } catch {
    out.textContent = "";
  }
}

function setBusy(busy: boolean): void {
  state.busy = busy;
  for (const el of document.querySelectorAll<HTMLButtonElement>("button")) {
    if (el.id !== "refresh") el.disabled = busy;
  }
  if (!busy) byId<HTMLButtonElement>("submit").disabled = !auctionOpen();
}

function startReplace(entry: JournalEntry): void {
  state.replacing = entry;
  byId<HTMLSelectElement>("request").value = entry.redemption_id;
  byId<HTMLInputElement>("shares").value = formatShares(BigInt(entry.shares), 18);
  byId<HTMLInputElement>("discount").value = formatDiscount(BigInt(entry.basis_point));
  byId("submit").textContent = `Replace bid on request #${entry.redemption_id}`;
  byId("cancel-replace").hidden = false;
  updatePreview();
  say("info", `Replacing your bid on request #${entry.redemption_id}: change it and submit. The old envelope stays in the service's history.`);
  byId("shares").focus();
}

function stopReplace(): void {
  state.replacing = null;
  byId("submit").textContent = "Seal, sign and submit";
  byId("cancel-replace").hidden = true;
}

async function onSubmit(event: Event): Promise<void> {
  event.preventDefault();
  if (state.busy) return;
  hush();
  let form: ReturnType<typeof readForm>;
  try {
    form = readForm();
  } catch (e) {
    say("error", explain(e));
    return;
  }
  setBusy(true);
  try {
    say("info", "Checking the auction with the service and the chain…");
    const r = reader()!;
    const service = new QevClient({ baseUrl: SERVICE, chain: r });
    const auction = await service.auction();
    if (auction.auction_id !== state.auction!.auction_id || auction.status !== "open") {
      state.auction = auction;
      renderAuction();
      throw new InputError("The auction changed while you were filling the form: check it and submit again. Nothing was sent.");
    }
    const pinned = await service.pin(auction);
    const auctionId = BigInt(auction.auction_id);
    const nonce = await readNonce(r, auction.settlement, auctionId, form.request.id);
    const signer = walletSigner((n) =>
      say("info", n === 1 ? "Sign the bid in your wallet (1 of 2)…" : "Sign the sealed envelope in your wallet (2 of 2)…"),
    );
    const bid = { auctionId, redemptionId: form.request.id, redemptionShares: form.shares, basisPoint: form.bp, nonce };
    const envelope = await sealBid(auction, bid, signer, pinned.publicKey);
    say("info", "Submitting the sealed bid…");
    const submitted = await service.submit(auction, envelope);
    recordBid({
      auction_id: auction.auction_id,
      redemption_id: form.request.id.toString(),
      controller: envelope.controller,
      chain_id: auction.chain_id,
      settlement: getAddress(auction.settlement),
      shares: form.shares.toString(),
      basis_point: Number(form.bp),
      ciphertext_hash: envelope.ciphertextHash,
      receipt: submitted.receipt,
      status: "live",
    });
    showReceipt(submitted.receipt);
    const replaced = state.replacing !== null;
    stopReplace();
    say(
      "ok",
      `${replaced ? "Bid replaced" : submitted.created ? "Bid accepted" : "This bid was already live"}: receipt #${submitted.receipt.sequence}, ` +
        `signed by the on-chain receipt signer ${pinned.receiptSigner}. Keep it (it is also in your journal below).`,
    );
  } catch (e) {
    say("error", explain(e));
  } finally {
    setBusy(false);
  }
  await loadRequests();
  await renderJournal();
}

// --- receipts -------------------------------------------------------------------------------

function showReceipt(receipt: Receipt): void {
  state.shownReceipt = receipt;
  byId("receipt-section").hidden = false;
  setText(
    "receipt-summary",
    `${receipt.kind === 1 ? "Cancel" : "Bid"} receipt #${receipt.sequence} for request #${receipt.redemption_id} in auction ` +
      `${receipt.auction_id}, received ${utc(receipt.received_at)}.`,
  );
  byId("receipt-json").textContent = JSON.stringify(receipt, null, 2);
}

function downloadReceipt(): void {
  const r = state.shownReceipt;
  if (!r) return;
  const blob = new Blob([`${JSON.stringify(r, null, 2)}\n`], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const name = `qev-receipt-${r.auction_id}-${r.redemption_id}-${r.sequence}${r.kind === 1 ? "-cancel" : ""}.json`;
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

// --- cancel and claim -------------------------------------------------------------------------

function requireWalletFor(entry: JournalEntry): void {
  if (!state.wallet) throw new InputError("Connect a wallet first.");
  if (state.wallet.chainId !== entry.chain_id) throw new InputError(wrongNetworkText());
  if (state.wallet.account !== getAddress(entry.controller)) {
    throw new InputError(`Connect the wallet that made this bid (${entry.controller}).`);
  }
}

async function onCancel(entry: JournalEntry): Promise<void> {
  if (state.busy) return;
  hush();
  setBusy(true);
  try {
    requireWalletFor(entry);
    const service = client();
    const auction = await service.auction(entry.auction_id);
    if (auction.status !== "open" || now() >= auction.closes_at) throw new InputError("Bidding has closed: the bid can no longer be cancelled.");
    say("info", "Sign the cancel in your wallet…");
    const receipt = await service.cancel(auction, BigInt(entry.redemption_id), entry.ciphertext_hash, walletSigner());
    updateEntry(entry, { status: "cancelled", cancel_receipt: receipt });
    showReceipt(receipt);
    const tx = await sendTx(
      getAddress(auction.settlement),
      incrementNonceCalldata(BigInt(auction.auction_id), BigInt(entry.redemption_id)),
      "incrementNonce (the on-chain cancel)",
    );
    updateEntry(entry, { nonce_tx: tx });
    say(
      "ok",
      `Bid cancelled: the service signed cancel receipt #${receipt.sequence}, and incrementNonce (tx ${tx}) ` +
        "voids every bid signed with the old nonce, whatever the service does.",
    );
  } catch (e) {
    say("error", explain(e));
  } finally {
    setBusy(false);
  }
  await loadRequests();
  await renderJournal();
}

async function onClaim(entry: JournalEntry, allocation: Allocation): Promise<void> {
  if (state.busy) return;
  hush();
  setBusy(true);
  try {
    requireWalletFor(entry);
    const tx = await sendTx(getAddress(entry.settlement), claimCalldata(allocation), "the claim");
    updateEntry(entry, { claim_tx: tx });
    say("ok", `Claimed: ${formatShares(BigInt(allocation.leaf.payout), 2)} USDai paid to ${allocation.leaf.controller} (tx ${tx}).`);
  } catch (e) {
    say("error", explain(e));
  } finally {
    setBusy(false);
  }
  await loadRequests();
  await renderJournal();
}

// --- the journal and outcomes ------------------------------------------------------------------

interface Outcome {
  text: string;
  cls: string;
  allocation?: Allocation;
  claimable?: boolean;
}

async function outcomeOf(entry: JournalEntry): Promise<Outcome | null> {
  const service = client();
  const auction = await service.auction(entry.auction_id);
  if (auction.status === "open" && now() < auction.closes_at) return null;
  if (entry.status === "cancelled") return { text: "cancelled: not in the book", cls: "muted" };
  if (entry.status === "superseded") return { text: "replaced by a later bid", cls: "muted" };
  if (auction.status === "open" || auction.status === "closed") return { text: "closed: waiting for the keeper to clear", cls: "muted" };
  const rid = BigInt(entry.redemption_id);
  const status = await service.status(entry.auction_id, rid);
  if (status.receipt.ciphertext_hash.toLowerCase() !== entry.ciphertext_hash.toLowerCase() || status.status !== "live") {
    return { text: `not in the book (the service shows another envelope, ${status.status})`, cls: "bad" };
  }
  const o = status.outcome as Record<string, string> | null | undefined;
  if (!o) {
    const result = await service.result(entry.auction_id);
    const ex = (result.excluded as Array<Record<string, string>>).find(
      (x) => x.redemption_id === entry.redemption_id && x.ciphertext_hash?.toLowerCase() === entry.ciphertext_hash.toLowerCase(),
    );
    if (ex) return { text: `excluded: ${ex.reason} (${REASONS[ex.reason!] ?? ex.detail})`, cls: "bad" };
    return { text: "no outcome published for this bid", cls: "bad" };
  }
  if (o.status === "unfilled") return { text: `not filled: ${o.reason} (${REASONS[o.reason!] ?? ""})`, cls: "bad" };
  const summary =
    `${o.status}: ${formatShares(BigInt(o.shares_filled!))} sUSDai filled, ${formatShares(BigInt(o.shares_burnt!))} given up, ` +
    `payout ${formatShares(BigInt(o.payout!), 2)} USDai`;
  const allocation = await service.allocation(entry.auction_id, rid);
  const settled = auction.status === "settled" || auction.status === "revealed";
  if (!settled) return { text: `${summary}; proof ✓ against the published root; settlement pending`, cls: "ok", allocation };
  const r = reader();
  if (!r) return { text: `${summary}; proof ✓ (connect a wallet to check the on-chain root and claim)`, cls: "ok", allocation };
  await service.checkSettledRoot(auction, allocation);
  const claimed = await readIsClaimed(r, getAddress(auction.settlement), BigInt(auction.auction_id), rid);
  return {
    text: `${summary}; proof ✓ against the root settled on-chain; ${claimed ? "claimed" : "not claimed yet"}`,
    cls: "ok",
    allocation,
    claimable: !claimed,
  };
}

async function renderJournal(): Promise<void> {
  const list = byId("journal");
  clear(list);
  const account = state.wallet?.account;
  const entries = loadJournal()
    .filter((e) => !account || getAddress(e.controller) === account)
    .sort((a, b) => b.auction_id - a.auction_id || b.receipt.sequence - a.receipt.sequence);
  byId("journal-empty").hidden = entries.length > 0;
  const pending: Array<Promise<void>> = [];
  for (const entry of entries) {
    const outcome = h("div", { class: "outcome muted" });
    const actions = h("div", { class: "actions" });
    const li = h(
      "li",
      {
        "data-auction": String(entry.auction_id),
        "data-redemption": entry.redemption_id,
        "data-status": entry.status,
        "data-hash": entry.ciphertext_hash,
      },
      h(
        "div",
        {},
        `Auction ${entry.auction_id} · request #${entry.redemption_id} · ${formatShares(BigInt(entry.shares))} sUSDai at ` +
          `${formatDiscount(BigInt(entry.basis_point))} % · receipt #${entry.receipt.sequence} · `,
        h("strong", { class: "entry-status" }, entry.status),
      ),
      outcome,
      actions,
    );
    const receiptButton = h("button", { type: "button", class: "secondary show-receipt" }, "Receipt");
    receiptButton.addEventListener("click", () => showReceipt(entry.cancel_receipt ?? entry.receipt));
    actions.append(receiptButton);
    const open = state.auction && entry.auction_id === state.auction.auction_id && auctionOpen();
    if (entry.status === "live" && open) {
      const replace = h("button", { type: "button", class: "replace" }, "Replace");
      replace.addEventListener("click", () => startReplace(entry));
      const cancel = h("button", { type: "button", class: "secondary cancel" }, "Cancel bid");
      cancel.addEventListener("click", () => void onCancel(entry));
      actions.append(replace, cancel);
    }
    if (entry.nonce_tx) outcome.append(h("div", {}, `nonce incremented on-chain: ${entry.nonce_tx}`));
    list.append(li);
    if (!open) {
      pending.push(
        outcomeOf(entry).then(
          (o) => {
            if (!o) return;
            outcome.append(h("div", { class: `result ${o.cls}` }, o.text));
            li.dataset.outcome = o.text.split(":")[0]!;
            if (o.allocation) {
              const proof = {
                allocation_root: o.allocation.allocation_root,
                leaf: o.allocation.leaf,
                proof: o.allocation.proof,
              };
              outcome.append(
                h("details", { class: "proof" }, h("summary", {}, "Allocation proof"), h("pre", {}, JSON.stringify(proof, null, 2))),
              );
            }
            if (o.allocation && o.claimable) {
              const claim = h("button", { type: "button", class: "claim" }, "Claim");
              const allocation = o.allocation;
              claim.addEventListener("click", () => void onClaim(entry, allocation));
              actions.append(claim);
            }
          },
          (e) => outcome.append(h("div", { class: "result bad" }, `outcome unavailable: ${explain(e)}`)),
        ),
      );
    }
  }
  await Promise.all(pending);
  list.dataset.ready = String(Date.now());
}

// --- start ----------------------------------------------------------------------------------

async function refreshAll(): Promise<void> {
  hush();
  if (!(await loadAuction())) return;
  renderWallet();
  await checkKey();
  await loadRequests();
  await renderJournal();
}

async function loadConfig(): Promise<void> {
  try {
    const response = await fetch(`${SERVICE}/web/bundle.json`, { cache: "no-store", credentials: "omit" });
    if (response.ok) state.config = (await response.json()) as WebConfig;
  } catch {
    // the page still works without it: reads go through the wallet
  }
}

async function main(): Promise<void> {
  byId("connect").addEventListener("click", () => void connect());
  byId("switch-network").addEventListener("click", () => void switchNetwork());
  byId("refresh").addEventListener("click", () => void refreshAll());
  byId("bid-form").addEventListener("submit", (e) => void onSubmit(e));
  byId("cancel-replace").addEventListener("click", () => {
    stopReplace();
    hush();
  });
  byId("download-receipt").addEventListener("click", downloadReceipt);
  byId("max").addEventListener("click", () => {
    const r = selectedRequest();
    if (r) byId<HTMLInputElement>("shares").value = formatShares(r.pendingShares, 18);
    updatePreview();
  });
  for (const id of ["shares", "discount", "request"]) byId(id).addEventListener("input", updatePreview);
  setInterval(tick, 1000);
  await loadConfig();
  await loadAuction();
  renderWallet();
  if (window.ethereum) {
    try {
      await readWallet(window.ethereum, false); // already authorised: no prompt
    } catch {
      state.wallet = null;
    }
  }
  await afterWalletChange();
  document.body.dataset.ready = "true";
}

void main();
