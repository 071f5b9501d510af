/**
 * EIP-712 typed data of PROTOCOL 3.1: `Bid`, `SealedBid` and `CancelBid` in the auction's
 * domain, as objects a wallet signs (`eth_signTypedData_v4`) and as digests.
 */
import { type Address, type Hex, hashTypedData, hexToBytes, keccak256, recoverAddress, toHex } from "viem";
import { type AuctionDocument, type Bid, U64_MAX, checkAddress, checkUint } from "./protocol.js";

export const BID_TYPE =
  "Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)";
export const SEALED_BID_TYPE = "SealedBid(uint64 auctionId,uint256 redemptionId,bytes32 ciphertextHash)";
export const CANCEL_BID_TYPE = "CancelBid(uint64 auctionId,uint256 redemptionId,bytes32 ciphertextHash)";

export const BID_TYPES = {
  Bid: [
    { name: "auctionId", type: "uint64" },
    { name: "redemptionId", type: "uint256" },
    { name: "redemptionShares", type: "uint256" },
    { name: "basisPoint", type: "uint256" },
    { name: "nonce", type: "uint256" },
  ],
} as const;

export const SEALED_BID_TYPES = {
  SealedBid: [
    { name: "auctionId", type: "uint64" },
    { name: "redemptionId", type: "uint256" },
    { name: "ciphertextHash", type: "bytes32" },
  ],
} as const;

export const CANCEL_BID_TYPES = {
  CancelBid: [
    { name: "auctionId", type: "uint64" },
    { name: "redemptionId", type: "uint256" },
    { name: "ciphertextHash", type: "bytes32" },
  ],
} as const;

/** `EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)`. */
export interface Domain {
  name: string;
  version: string;
  chainId: bigint;
  verifyingContract: Address;
}

/** The domain an auction document announces (`eip712`, `chain_id`, `settlement`). */
export function domainOf(auction: Pick<AuctionDocument, "eip712" | "chain_id" | "settlement">): Domain {
  return {
    name: auction.eip712.name,
    version: auction.eip712.version,
    chainId: BigInt(auction.chain_id),
    verifyingContract: checkAddress("settlement", auction.settlement),
  };
}

function hash32(name: string, value: Hex): Hex {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new TypeError(`${name} must be 32 bytes of hex`);
  return value.toLowerCase() as Hex;
}

export function bidTypedData(domain: Domain, bid: Bid) {
  return {
    domain,
    types: BID_TYPES,
    primaryType: "Bid" as const,
    message: {
      auctionId: checkUint("auctionId", bid.auctionId, U64_MAX),
      redemptionId: checkUint("redemptionId", bid.redemptionId),
      redemptionShares: checkUint("redemptionShares", bid.redemptionShares),
      basisPoint: checkUint("basisPoint", bid.basisPoint),
      nonce: checkUint("nonce", bid.nonce),
    },
  };
}

export function sealedBidTypedData(domain: Domain, auctionId: bigint, redemptionId: bigint, ciphertextHash: Hex) {
  return {
    domain,
    types: SEALED_BID_TYPES,
    primaryType: "SealedBid" as const,
    message: {
      auctionId: checkUint("auctionId", auctionId, U64_MAX),
      redemptionId: checkUint("redemptionId", redemptionId),
      ciphertextHash: hash32("ciphertextHash", ciphertextHash),
    },
  };
}

export function cancelBidTypedData(domain: Domain, auctionId: bigint, redemptionId: bigint, ciphertextHash: Hex) {
  return {
    domain,
    types: CANCEL_BID_TYPES,
    primaryType: "CancelBid" as const,
    message: {
      auctionId: checkUint("auctionId", auctionId, U64_MAX),
      redemptionId: checkUint("redemptionId", redemptionId),
      ciphertextHash: hash32("ciphertextHash", ciphertextHash),
    },
  };
}

export type QevTypedData =
  | ReturnType<typeof bidTypedData>
  | ReturnType<typeof sealedBidTypedData>
  | ReturnType<typeof cancelBidTypedData>;

/** The EIP-712 digest `keccak256(0x1901 || domainSeparator || hashStruct(message))`. */
export function digestOf(typedData: QevTypedData): Hex {
  return hashTypedData(typedData as Parameters<typeof hashTypedData>[0]);
}

export function typeHash(typeString: string): Hex {
  return keccak256(toHex(typeString));
}

/** secp256k1 group order and half of it (signatures with s above the half are refused). */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = N >> 1n;

/**
 * A 65-byte `r || s || v` signature in the form the service and the keeper accept
 * (PROTOCOL B.2): v in {27, 28} (0/1 from some wallets is shifted) and low s (a high-s
 * signature is replaced by its equivalent low-s twin).
 */
export function normalizeSignature(signature: Hex): Hex {
  const bytes = hexToBytes(signature);
  if (bytes.length !== 65) throw new RangeError(`a signature is 65 bytes, got ${bytes.length}`);
  let v = bytes[64]!;
  if (v === 0 || v === 1) v += 27;
  if (v !== 27 && v !== 28) throw new RangeError(`signature v must be 27 or 28, got ${v}`);
  const r = BigInt(toHex(bytes.subarray(0, 32)));
  let s = BigInt(toHex(bytes.subarray(32, 64)));
  if (r === 0n || r >= N || s === 0n || s >= N) throw new RangeError("signature r or s out of range");
  if (s > HALF_N) {
    s = N - s;
    v = v === 27 ? 28 : 27;
  }
  const out = new Uint8Array(65);
  out.set(bytes.subarray(0, 32), 0);
  out.set(hexToBytes(toHex(s, { size: 32 })), 32);
  out[64] = v;
  return toHex(out);
}

/** Strict check of PROTOCOL B.2 (v 27/28, 0 < r, s < n, low s); throws a RangeError. */
export function checkStrictSignature(signature: Hex): void {
  const bytes = hexToBytes(signature);
  if (bytes.length !== 65) throw new RangeError(`a signature is 65 bytes, got ${bytes.length}`);
  const v = bytes[64]!;
  const r = BigInt(toHex(bytes.subarray(0, 32)));
  const s = BigInt(toHex(bytes.subarray(32, 64)));
  if ((v !== 27 && v !== 28) || r === 0n || r >= N || s === 0n || s > HALF_N) {
    throw new RangeError("signature is not in the strict form (v 27/28, low s)");
  }
}

/** The address that signed `digest` (a strict signature only). */
export async function recoverSigner(digest: Hex, signature: Hex): Promise<Address> {
  checkStrictSignature(signature);
  return recoverAddress({ hash: digest, signature });
}
