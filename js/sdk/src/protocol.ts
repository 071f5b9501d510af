/**
 * The byte-level pieces of docs/PROTOCOL.md section 3: the HPKE `info`, the 320-byte
 * plaintext, the auction document's shape and the protocol's constants.
 */
import {
  type Address,
  type Hex,
  bytesToHex,
  decodeAbiParameters,
  encodeAbiParameters,
  getAddress,
  hexToBytes,
  isAddress,
} from "viem";

export const INFO_PREFIX = "qev-bid-v1";
export const ENC_LENGTH = 32;
export const TAG_LENGTH = 16;
export const PLAINTEXT_LENGTH = 320;
export const CIPHERTEXT_LENGTH = ENC_LENGTH + PLAINTEXT_LENGTH + TAG_LENGTH; // 368
export const MIN_BASIS_POINT = 10n;
export const MAX_BASIS_POINT = 10_000n;
export const BPS = 10_000n;
export const PRICE_SCALE = 10n ** 18n;
export const U64_MAX = (1n << 64n) - 1n;
export const U256_MAX = (1n << 256n) - 1n;

/** The inner EIP-712 `Bid` (3.2), byte for byte the draft registry's struct. */
export interface Bid {
  auctionId: bigint;
  redemptionId: bigint;
  redemptionShares: bigint;
  basisPoint: bigint;
  nonce: bigint;
}

/** The auction document of 4.3 (`GET /v1/auctions/current`, `GET /v1/auctions/{T}`). */
export interface AuctionDocument {
  auction_id: number;
  opens_at: number;
  closes_at: number;
  status: "open" | "closed" | "cleared" | "submitted" | "settled" | "revealed";
  public_key: Hex | null;
  chain_id: number;
  settlement: Address;
  eip712: { name: string; version: string };
  receipt_signer: Address;
  web_bundle_sha256?: string;
}

/** What the service stores: a ciphertext signed as `SealedBid` by the controller (3.5). */
export interface Envelope {
  auctionId: bigint;
  redemptionId: bigint;
  controller: Address;
  ciphertext: Hex;
  ciphertextHash: Hex;
  signature: Hex;
}

const PLAINTEXT_PARAMS = [
  { type: "uint64" },
  { type: "uint256" },
  { type: "uint256" },
  { type: "uint256" },
  { type: "uint256" },
  { type: "bytes" },
] as const;

export function checkUint(name: string, value: bigint, max: bigint = U256_MAX): bigint {
  if (typeof value !== "bigint" || value < 0n || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${String(value)}`);
  }
  return value;
}

export function checkAddress(name: string, value: string): Address {
  if (typeof value !== "string" || !isAddress(value, { strict: false })) {
    throw new TypeError(`${name} is not an address: ${String(value)}`);
  }
  return getAddress(value);
}

function be(value: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = value;
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** `"qev-bid-v1" || chainId (32 B BE) || settlement (20 B) || auctionId (8 B BE)`: 70 bytes. */
export function bidInfo(chainId: bigint | number, settlement: string, auctionId: bigint | number): Uint8Array {
  const prefix = new TextEncoder().encode(INFO_PREFIX);
  const contract = hexToBytes(checkAddress("settlement", settlement));
  const out = new Uint8Array(prefix.length + 32 + 20 + 8);
  out.set(prefix, 0);
  out.set(be(checkUint("chainId", BigInt(chainId)), 32), prefix.length);
  out.set(contract, prefix.length + 32);
  out.set(be(checkUint("auctionId", BigInt(auctionId), U64_MAX), 8), prefix.length + 52);
  return out;
}

/** `abi.encode(uint64, uint256, uint256, uint256, uint256, bytes signature)`: 320 bytes (3.3). */
export function encodePlaintext(bid: Bid, signature: Hex): Uint8Array {
  const sig = hexToBytes(signature);
  if (sig.length !== 65) throw new RangeError(`a signature is 65 bytes, got ${sig.length}`);
  const encoded = encodeAbiParameters(PLAINTEXT_PARAMS, [
    checkUint("auctionId", bid.auctionId, U64_MAX),
    checkUint("redemptionId", bid.redemptionId),
    checkUint("redemptionShares", bid.redemptionShares),
    checkUint("basisPoint", bid.basisPoint),
    checkUint("nonce", bid.nonce),
    signature,
  ]);
  const out = hexToBytes(encoded);
  if (out.length !== PLAINTEXT_LENGTH) throw new Error(`plaintext is ${out.length} bytes`);
  return out;
}

/** Strictly decode a plaintext (the canonical 320 bytes only, as the keeper does). */
export function decodePlaintext(plaintext: Uint8Array): { bid: Bid; signature: Hex } {
  if (plaintext.length !== PLAINTEXT_LENGTH) {
    throw new RangeError(`plaintext is ${plaintext.length} bytes, expected ${PLAINTEXT_LENGTH}`);
  }
  const [auctionId, redemptionId, redemptionShares, basisPoint, nonce, signature] =
    decodeAbiParameters(PLAINTEXT_PARAMS, bytesToHex(plaintext));
  const canonical = encodePlaintext(
    { auctionId, redemptionId, redemptionShares, basisPoint, nonce },
    signature,
  );
  if (bytesToHex(canonical) !== bytesToHex(plaintext)) {
    throw new RangeError("plaintext is not the canonical ABI encoding");
  }
  return { bid: { auctionId, redemptionId, redemptionShares, basisPoint, nonce }, signature };
}
