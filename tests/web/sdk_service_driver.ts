// The SDK's QevClient against a real service (tests/web/test_sdk_service.py): bid, identical
// resubmission, replace, cancel, status, and the refusals (a key or receipt signer that is not
// the chain's). The chain is a stand-in answering the three reads the client makes.
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  AuctionKeyMismatchError,
  QevClient,
  ReceiptMismatchError,
  ServiceProblemError,
  ServiceUnreachableError,
  sealBid,
} from "../../js/sdk/src/index.js";

interface Input {
  url: string;
  key: Hex;
  redemption_id: string;
  chain_id: number;
  onchain_public_key: Hex;
  receipt_signer: Address;
  nonce: string;
}

function chain(input: Input, publicKey: Hex, signer: Address) {
  return {
    getChainId: async () => input.chain_id,
    readContract: (async (args: { functionName: string }) => {
      switch (args.functionName) {
        case "auctionKey":
          return [publicKey, `0x${"11".repeat(32)}`, `0x${"00".repeat(32)}`, false];
        case "receiptSigner":
          return signer;
        case "nonce":
          return BigInt(input.nonce);
        default:
          throw new Error(`unexpected read ${args.functionName}`);
      }
    }) as never,
  };
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (e instanceof ServiceProblemError) return `problem:${e.status}:${e.code}`;
    if (e instanceof AuctionKeyMismatchError || e instanceof ReceiptMismatchError || e instanceof ServiceUnreachableError) {
      return e.name;
    }
    throw e;
  }
}

const input = JSON.parse(await new Promise<string>((resolve) => {
  let s = "";
  process.stdin.on("data", (c) => (s += c)).on("end", () => resolve(s));
})) as Input;
const holder = privateKeyToAccount(input.key);
const rid = BigInt(input.redemption_id);
const client = new QevClient({ baseUrl: input.url, chain: chain(input, input.onchain_public_key, input.receipt_signer) });
const out: Record<string, unknown> = {};

const first = await client.bid(holder, { redemptionId: rid, shares: 5n * 10n ** 18n, basisPoint: 250n });
out.first = { created: first.created, receipt: first.receipt, ciphertext: first.envelope.ciphertext, signature: first.envelope.signature };
const auction = await client.auction();
const again = await client.submit(auction, first.envelope);
out.identical = { created: again.created, same: JSON.stringify(again.receipt) === JSON.stringify(first.receipt) };
const second = await client.bid(holder, { redemptionId: rid, shares: 6n * 10n ** 18n, basisPoint: 300n });
out.second = { created: second.created, receipt: second.receipt, ciphertext: second.envelope.ciphertext, signature: second.envelope.signature };
out.replayed = await outcome(client.submit(auction, first.envelope));
out.status_live = (await client.status(auction.auction_id, rid)).status;
const cancel = await client.cancel(auction, rid, second.envelope.ciphertextHash, holder);
out.cancel = cancel;
out.status_cancelled = (await client.status(auction.auction_id, rid)).status;
out.cancel_again = await outcome(client.cancel(auction, rid, second.envelope.ciphertextHash, holder));
// a service whose key is not the chain's: refused before anything is sealed or sent
const wrongKey = new QevClient({ baseUrl: input.url, chain: chain(input, `0x${"42".repeat(32)}`, input.receipt_signer) });
out.wrong_key = await outcome(wrongKey.bid(holder, { redemptionId: rid, shares: 1n, basisPoint: 100n }));
// receipts signed by anyone but the chain's receipt signer are refused
const rogue = privateKeyToAccount(`0x${"07".repeat(32)}`).address;
const wrongSigner = new QevClient({ baseUrl: input.url, chain: chain(input, input.onchain_public_key, rogue) });
out.wrong_signer = await outcome(wrongSigner.bid(holder, { redemptionId: rid, shares: 1n, basisPoint: 100n }));
const pinned = new QevClient({ baseUrl: input.url, receiptSigner: rogue });
out.pinned_rogue = await outcome(pinned.submit(auction, await sealBid(auction, { auctionId: BigInt(auction.auction_id), redemptionId: rid, redemptionShares: 7n, basisPoint: 10n, nonce: 0n }, holder)));
out.unreachable = await outcome(new QevClient({ baseUrl: "http://127.0.0.1:1" }).auction());
process.stdout.write(JSON.stringify(out));
