// Cross-language driver for tests/node/test_sdk_cross.py: runs the JavaScript SDK (js/sdk)
// on a batch of operations read as JSON from stdin and writes one JSON result per operation.
// Bundled by the test with esbuild (Node runs no TypeScript), then run with node.
import { type Hex, bytesToHex, hexToBytes, keccak256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  BID_TYPE,
  CANCEL_BID_TYPE,
  SEALED_BID_TYPE,
  bidInfo,
  bidTypedData,
  cancelBidTypedData,
  claimCalldata,
  decodePlaintext,
  digestOf,
  domainOf,
  incrementNonceCalldata,
  normalizeSignature,
  open,
  parseDiscount,
  parseShares,
  preview,
  receiptDigest,
  receiptSignerOf,
  recoverSigner,
  sealBid,
  sealedBidTypedData,
  typeHash,
  verifyProof,
  allocationLeafHash,
  verifyReceipt,
} from "../../js/sdk/src/index.js";

type Op = { op: string; [key: string]: any };

const big = (v: unknown) => BigInt(v as string);

function bidOf(b: any) {
  return {
    auctionId: big(b.auction_id),
    redemptionId: big(b.redemption_id),
    redemptionShares: big(b.redemption_shares),
    basisPoint: big(b.basis_point),
    nonce: big(b.nonce),
  };
}

function caught(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return (e as Error).name;
  }
}

async function run(op: Op): Promise<unknown> {
  switch (op.op) {
    case "typehashes":
      return [BID_TYPE, SEALED_BID_TYPE, CANCEL_BID_TYPE].map(typeHash);
    case "info":
      return bytesToHex(bidInfo(big(op.chain_id), op.settlement, big(op.auction_id)));
    case "seal": {
      const account = privateKeyToAccount(op.key as Hex);
      const env = await sealBid(op.auction, bidOf(op.bid), account);
      return {
        controller: env.controller,
        ciphertext: env.ciphertext,
        ciphertext_hash: env.ciphertextHash,
        signature: env.signature,
      };
    }
    case "open": {
      const info = bidInfo(big(op.chain_id), op.settlement, big(op.auction_id));
      const plaintext = await open(hexToBytes(op.ciphertext), hexToBytes(op.private_key), info);
      const { bid, signature } = decodePlaintext(plaintext);
      const domain = domainOf(op.auction);
      return {
        bid: Object.fromEntries(Object.entries(bid).map(([k, v]) => [k, v.toString()])),
        bid_signer: await recoverSigner(digestOf(bidTypedData(domain, bid)), signature),
        envelope_signer: await recoverSigner(
          digestOf(sealedBidTypedData(domain, bid.auctionId, bid.redemptionId, keccak256(op.ciphertext))),
          op.signature,
        ),
      };
    }
    case "digests": {
      const domain = domainOf(op.auction);
      const T = big(op.bid.auction_id);
      const R = big(op.bid.redemption_id);
      return {
        bid: digestOf(bidTypedData(domain, bidOf(op.bid))),
        sealed: digestOf(sealedBidTypedData(domain, T, R, op.hash)),
        cancel: digestOf(cancelBidTypedData(domain, T, R, op.hash)),
      };
    }
    case "sign": {
      const account = privateKeyToAccount(op.key as Hex);
      const domain = domainOf(op.auction);
      const T = big(op.bid.auction_id);
      const R = big(op.bid.redemption_id);
      return {
        address: account.address,
        bid: normalizeSignature(await account.signTypedData(bidTypedData(domain, bidOf(op.bid)))),
        sealed: normalizeSignature(await account.signTypedData(sealedBidTypedData(domain, T, R, op.hash))),
        cancel: normalizeSignature(await account.signTypedData(cancelBidTypedData(domain, T, R, op.hash))),
      };
    }
    case "recover":
      return recoverSigner(op.digest, op.signature).catch((e: Error) => `error:${e.name}`);
    case "normalize":
      return normalizeSignature(op.signature);
    case "receipt": {
      const r = op.receipt;
      let verified: string;
      try {
        await verifyReceipt(r, op.expected, op.signer);
        verified = "ok";
      } catch (e) {
        verified = `${(e as Error).name}: ${(e as Error).message}`;
      }
      return { digest: receiptDigest(r), signer: await receiptSignerOf(r), verified };
    }
    case "sign_receipt": {
      const account = privateKeyToAccount(op.key as Hex);
      const digest = receiptDigest(op.receipt);
      return { digest, signature: await account.signMessage({ message: { raw: digest } }) };
    }
    case "claim":
      return {
        calldata: claimCalldata(op.allocation),
        leaf: allocationLeafHash(op.allocation.leaf),
        verified: verifyProof(op.allocation.allocation_root, allocationLeafHash(op.allocation.leaf), op.allocation.proof),
      };
    case "increment_nonce":
      return incrementNonceCalldata(big(op.auction_id), big(op.redemption_id));
    case "units":
      return {
        shares: op.shares.map((s: string) => {
          const err = caught(() => parseShares(s));
          return err ?? parseShares(s).toString();
        }),
        discounts: op.discounts.map((s: string) => {
          const err = caught(() => parseDiscount(s));
          return err ?? parseDiscount(s).toString();
        }),
        previews: op.previews.map(([x, b, p]: [string, string, string]) => {
          const { burnt, payout } = preview(big(x), big(b), big(p));
          return [burnt.toString(), payout.toString()];
        }),
      };
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", async () => {
  const ops = JSON.parse(input) as Op[];
  const out: unknown[] = [];
  for (const op of ops) out.push(await run(op));
  process.stdout.write(JSON.stringify(out));
});
