/** Signed intake receipts (PROTOCOL 4.6): their digest and the service's EIP-191 signature. */
import { type Address, type Hex, encodeAbiParameters, getAddress, keccak256, recoverMessageAddress } from "viem";
import { checkStrictSignature } from "./eip712.js";
import { U64_MAX, checkAddress, checkUint } from "./protocol.js";

export const RECEIPT_KIND_BID = 0;
export const RECEIPT_KIND_CANCEL = 1;

/** A receipt as the service sends it (4.1 encodings). */
export interface Receipt {
  auction_id: number;
  redemption_id: string;
  controller: Address;
  ciphertext_hash: Hex;
  sequence: number;
  received_at: number;
  kind: 0 | 1;
  service_signature: Hex;
}

export class ReceiptMismatchError extends Error {
  override name = "ReceiptMismatchError";
}

const RECEIPT_PARAMS = [
  { type: "uint64" },
  { type: "uint256" },
  { type: "address" },
  { type: "bytes32" },
  { type: "uint64" },
  { type: "uint64" },
  { type: "uint8" },
] as const;

/** `keccak256(abi.encode(uint64, uint256, address, bytes32, uint64, uint64, uint8))`. */
export function receiptDigest(r: Omit<Receipt, "service_signature">): Hex {
  return keccak256(
    encodeAbiParameters(RECEIPT_PARAMS, [
      checkUint("auction_id", BigInt(r.auction_id), U64_MAX),
      checkUint("redemption_id", BigInt(r.redemption_id)),
      checkAddress("controller", r.controller),
      r.ciphertext_hash,
      checkUint("sequence", BigInt(r.sequence), U64_MAX),
      checkUint("received_at", BigInt(r.received_at), U64_MAX),
      Number(r.kind),
    ]),
  );
}

/** The address whose `personal_sign` of the 32-byte digest is `service_signature`. */
export async function receiptSignerOf(r: Receipt): Promise<Address> {
  checkStrictSignature(r.service_signature);
  return recoverMessageAddress({ message: { raw: receiptDigest(r) }, signature: r.service_signature });
}

export interface ExpectedReceipt {
  auctionId: bigint | number;
  redemptionId: bigint | number | string;
  controller: string;
  kind: 0 | 1;
  ciphertextHash?: Hex;
}

/**
 * Check that `raw` acknowledges exactly the expected operation and is signed by
 * `receiptSigner` (the settlement contract's `receiptSigner()`); returns the receipt.
 */
export async function verifyReceipt(raw: unknown, expected: ExpectedReceipt, receiptSigner: Address): Promise<Receipt> {
  const r = raw as Receipt;
  if (r === null || typeof r !== "object") throw new ReceiptMismatchError("no receipt in the answer");
  if (Number(r.kind) !== expected.kind) throw new ReceiptMismatchError(`expected a kind-${expected.kind} receipt`);
  if (BigInt(r.auction_id) !== BigInt(expected.auctionId) || BigInt(r.redemption_id) !== BigInt(expected.redemptionId)) {
    throw new ReceiptMismatchError("the receipt names another bid");
  }
  if (getAddress(r.controller) !== getAddress(expected.controller)) {
    throw new ReceiptMismatchError("the receipt names another controller");
  }
  if (expected.ciphertextHash !== undefined && r.ciphertext_hash.toLowerCase() !== expected.ciphertextHash.toLowerCase()) {
    throw new ReceiptMismatchError("the receipt names another ciphertext");
  }
  let signer: Address;
  try {
    signer = await receiptSignerOf(r);
  } catch (e) {
    throw new ReceiptMismatchError(`the receipt signature is invalid: ${(e as Error).message}`);
  }
  if (signer !== getAddress(receiptSigner)) {
    throw new ReceiptMismatchError(`the receipt is signed by ${signer}, not by the receipt signer ${getAddress(receiptSigner)}`);
  }
  return r;
}
