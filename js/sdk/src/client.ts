/**
 * A holder's client for one qev service (PROTOCOL 3.7): seal, sign, submit, verify the
 * receipt; replace, cancel, status, outcome and proof. Pinned to the chain: a bid is sealed
 * only to the key committed as `auctionKey(T)`, and receipts must recover to the settlement
 * contract's `receiptSigner()`.
 */
import { type Address, type Hex, bytesToHex, getAddress, hexToBytes, keccak256 } from "viem";
import {
  type ChainReader,
  readAuctionKey,
  readNonce,
  readReceiptSigner,
  readSettledAuction,
} from "./chain.js";
import {
  type QevTypedData,
  bidTypedData,
  cancelBidTypedData,
  digestOf,
  domainOf,
  normalizeSignature,
  recoverSigner,
  sealedBidTypedData,
} from "./eip712.js";
import { seal } from "./hpke.js";
import { type Allocation, allocationLeafHash, verifyProof } from "./merkle.js";
import { type AuctionDocument, type Bid, type Envelope, bidInfo, checkAddress, encodePlaintext } from "./protocol.js";
import { type Receipt, ReceiptMismatchError, verifyReceipt } from "./receipts.js";

/** The service answered with an RFC 9457 problem; act on `code` (4.5). */
export class ServiceProblemError extends Error {
  override name = "ServiceProblemError";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly body: unknown,
  ) {
    super(`${status} ${code}: ${detail}`);
  }
}

/** The service could not be reached at all (network error, service down). */
export class ServiceUnreachableError extends Error {
  override name = "ServiceUnreachableError";
}

/** The service announces another key or receipt signer than the chain. */
export class AuctionKeyMismatchError extends Error {
  override name = "AuctionKeyMismatchError";
}

export class SignerMismatchError extends Error {
  override name = "SignerMismatchError";
}

/** Whatever signs EIP-712 typed data for the controller (a viem account or wallet adapter). */
export interface BidSigner {
  address: Address;
  signTypedData(typedData: QevTypedData): Promise<Hex>;
}

export interface QevClientOptions {
  /** The service's base URL; "" for the page's own origin. */
  baseUrl?: string;
  /** The chain the contracts live on; without it, `receiptSigner` must be given. */
  chain?: ChainReader;
  /** Pin a receipt signer explicitly (else read from `receiptSigner()` on-chain). */
  receiptSigner?: Address;
  fetch?: typeof fetch;
}

export interface SubmittedBid {
  envelope: Envelope;
  receipt: Receipt;
  created: boolean;
  status: string;
}

export interface Pinned {
  auction: AuctionDocument;
  receiptSigner: Address;
  publicKey: Hex;
}

/** Sign typed data, normalise the signature (B.2) and check it recovers to the signer. */
export async function signChecked(signer: BidSigner, typedData: QevTypedData): Promise<Hex> {
  const signature = normalizeSignature(await signer.signTypedData(typedData));
  const recovered = await recoverSigner(digestOf(typedData), signature);
  if (recovered !== getAddress(signer.address)) {
    throw new SignerMismatchError(`the wallet signed as ${recovered}, not as ${getAddress(signer.address)}`);
  }
  return signature;
}

/** Seal and sign a bid (no network): Bid signature, plaintext, HPKE, SealedBid signature. */
export async function sealBid(auction: AuctionDocument, bid: Bid, signer: BidSigner, publicKey?: Hex): Promise<Envelope> {
  const key = publicKey ?? auction.public_key;
  if (!key) throw new AuctionKeyMismatchError(`auction ${auction.auction_id} has no public key yet`);
  if (bid.auctionId !== BigInt(auction.auction_id)) throw new RangeError("the bid names another auction");
  const domain = domainOf(auction);
  const bidSignature = await signChecked(signer, bidTypedData(domain, bid));
  const plaintext = encodePlaintext(bid, bidSignature);
  const info = bidInfo(domain.chainId, domain.verifyingContract, bid.auctionId);
  const ciphertext = bytesToHex(await seal(plaintext, hexToBytes(key), info));
  plaintext.fill(0);
  const ciphertextHash = keccak256(ciphertext);
  const signature = await signChecked(
    signer,
    sealedBidTypedData(domain, bid.auctionId, bid.redemptionId, ciphertextHash),
  );
  return {
    auctionId: bid.auctionId,
    redemptionId: bid.redemptionId,
    controller: getAddress(signer.address),
    ciphertext,
    ciphertextHash,
    signature,
  };
}

export class QevClient {
  readonly baseUrl: string;
  readonly chain: ChainReader | undefined;
  private pinnedSigner: Address | undefined;
  private readonly fetcher: typeof fetch;

  constructor(options: QevClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
    this.chain = options.chain;
    this.pinnedSigner = options.receiptSigner ? getAddress(options.receiptSigner) : undefined;
    this.fetcher = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private async request(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    let response: Response;
    try {
      response = await this.fetcher(this.baseUrl + path, {
        method,
        headers: body === undefined ? { accept: "application/json" } : { "content-type": "application/json", accept: "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      throw new ServiceUnreachableError(`the service cannot be reached (${(e as Error).message})`);
    }
    let json: any;
    try {
      json = await response.json();
    } catch {
      json = undefined;
    }
    if (response.status >= 400) {
      const code = json && typeof json.code === "string" ? json.code : "unknown";
      const detail = json && typeof json.detail === "string" ? json.detail : response.statusText;
      throw new ServiceProblemError(response.status, code, detail, json);
    }
    if (json === undefined) throw new ServiceProblemError(response.status, "unknown", "the answer is not JSON", undefined);
    return { status: response.status, json };
  }

  /** The current auction's document, or auction `T`'s. */
  async auction(auctionId?: bigint | number): Promise<AuctionDocument> {
    const path = auctionId === undefined ? "/v1/auctions/current" : `/v1/auctions/${BigInt(auctionId)}`;
    return (await this.request("GET", path)).json as AuctionDocument;
  }

  /** The receipt signer receipts must recover to (the chain's `receiptSigner()`). */
  async receiptSigner(auction: AuctionDocument): Promise<Address> {
    if (this.pinnedSigner) return this.pinnedSigner;
    if (!this.chain) throw new ReceiptMismatchError("no chain to read receiptSigner() from, and no signer pinned");
    const onchain = await readReceiptSigner(this.chain, checkAddress("settlement", auction.settlement));
    if (BigInt(onchain) === 0n) throw new ReceiptMismatchError("no receipt signer is registered on-chain");
    if (getAddress(auction.receipt_signer) !== onchain) {
      throw new ReceiptMismatchError(
        `the service names receipt signer ${getAddress(auction.receipt_signer)}, the chain ${onchain}`,
      );
    }
    this.pinnedSigner = onchain;
    return onchain;
  }

  /** Check the served public key against `auctionKey(T)` and pin the receipt signer. */
  async pin(auction: AuctionDocument): Promise<Pinned> {
    if (!this.chain) throw new AuctionKeyMismatchError("a chain is needed to check the auction key");
    const chainId = await this.chain.getChainId();
    if (chainId !== auction.chain_id) {
      throw new AuctionKeyMismatchError(`the chain is ${chainId}, the auction is on chain ${auction.chain_id}`);
    }
    if (!auction.public_key) throw new AuctionKeyMismatchError(`auction ${auction.auction_id} has no public key yet`);
    const state = await readAuctionKey(this.chain, checkAddress("settlement", auction.settlement), BigInt(auction.auction_id));
    if (!state.committed || state.publicKey.toLowerCase() !== auction.public_key.toLowerCase()) {
      throw new AuctionKeyMismatchError(
        `the service's public key for auction ${auction.auction_id} is not the one committed on-chain: refusing to seal`,
      );
    }
    return { auction, receiptSigner: await this.receiptSigner(auction), publicKey: state.publicKey };
  }

  /** POST an envelope; the receipt must acknowledge exactly it and recover to the receipt signer. */
  async submit(auction: AuctionDocument, envelope: Envelope): Promise<SubmittedBid> {
    const signer = await this.receiptSigner(auction);
    const { status, json } = await this.request("POST", `/v1/auctions/${envelope.auctionId}/bids`, {
      redemption_id: envelope.redemptionId.toString(),
      controller: envelope.controller,
      ciphertext: envelope.ciphertext,
      signature: envelope.signature,
    });
    const receipt = await verifyReceipt(
      json.receipt,
      {
        auctionId: envelope.auctionId,
        redemptionId: envelope.redemptionId,
        controller: envelope.controller,
        kind: 0,
        ciphertextHash: envelope.ciphertextHash,
      },
      signer,
    );
    return { envelope, receipt, created: status === 201, status: String(json.status ?? "live") };
  }

  /**
   * Seal, sign and submit a bid (new or replacing the live one). The nonce is read from the
   * chain unless given; the key is checked against `auctionKey(T)` first.
   */
  async bid(
    signer: BidSigner,
    args: { redemptionId: bigint; shares: bigint; basisPoint: bigint; nonce?: bigint; auction?: AuctionDocument },
  ): Promise<SubmittedBid> {
    const auction = args.auction ?? (await this.auction());
    const pinned = await this.pin(auction);
    const auctionId = BigInt(auction.auction_id);
    const nonce =
      args.nonce ?? (await readNonce(this.chain!, checkAddress("settlement", auction.settlement), auctionId, args.redemptionId));
    const bid: Bid = {
      auctionId,
      redemptionId: args.redemptionId,
      redemptionShares: args.shares,
      basisPoint: args.basisPoint,
      nonce,
    };
    const envelope = await sealBid(auction, bid, signer, pinned.publicKey);
    return this.submit(auction, envelope);
  }

  /** Cancel the live bid, named by its ciphertext hash, with a signed CancelBid (kind-1 receipt). */
  async cancel(auction: AuctionDocument, redemptionId: bigint, ciphertextHash: Hex, signer: BidSigner): Promise<Receipt> {
    const receiptSigner = await this.receiptSigner(auction);
    const auctionId = BigInt(auction.auction_id);
    const signature = await signChecked(signer, cancelBidTypedData(domainOf(auction), auctionId, redemptionId, ciphertextHash));
    const { json } = await this.request("DELETE", `/v1/auctions/${auctionId}/bids/${redemptionId}`, {
      controller: getAddress(signer.address),
      ciphertext_hash: ciphertextHash,
      signature,
    });
    return verifyReceipt(
      json.receipt,
      { auctionId, redemptionId, controller: signer.address, kind: 1, ciphertextHash },
      receiptSigner,
    );
  }

  /** The pair's receipt, status and (after clearing) outcome. */
  async status(auctionId: bigint | number, redemptionId: bigint): Promise<any> {
    return (await this.request("GET", `/v1/auctions/${BigInt(auctionId)}/bids/${redemptionId}`)).json;
  }

  /** The result document (after clearing). */
  async result(auctionId: bigint | number): Promise<any> {
    return (await this.request("GET", `/v1/auctions/${BigInt(auctionId)}/result`)).json;
  }

  /**
   * The allocation leaf with its proof, checked against the published root and, when a
   * chain is at hand, against the root settled on-chain.
   */
  async allocation(auctionId: bigint | number, redemptionId: bigint): Promise<Allocation> {
    const body = (await this.request("GET", `/v1/auctions/${BigInt(auctionId)}/allocations/${redemptionId}`)).json as Allocation;
    if (BigInt(body.leaf.redemption_id) !== redemptionId || BigInt(body.leaf.auction_id) !== BigInt(auctionId)) {
      throw new ReceiptMismatchError("the allocation names another bid");
    }
    if (!verifyProof(body.allocation_root, allocationLeafHash(body.leaf), body.proof)) {
      throw new ReceiptMismatchError("the allocation proof does not verify against the published root");
    }
    return body;
  }

  /** Check an allocation's root against `auction(T).allocationRoot` on-chain. */
  async checkSettledRoot(auction: AuctionDocument, allocation: Allocation): Promise<void> {
    if (!this.chain) return;
    const settled = await readSettledAuction(this.chain, checkAddress("settlement", auction.settlement), BigInt(auction.auction_id));
    if (!settled.settled) throw new ReceiptMismatchError(`auction ${auction.auction_id} is not settled on-chain yet`);
    if (settled.allocationRoot.toLowerCase() !== allocation.allocation_root.toLowerCase()) {
      throw new ReceiptMismatchError("the published allocation root is not the one settled on-chain");
    }
  }
}
