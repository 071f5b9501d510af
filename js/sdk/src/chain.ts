/** Chain reads that pin the service (3.6, 4.6), a holder's requests, and transaction calldata. */
import { type Address, type Hex, type PublicClient, encodeFunctionData, getAddress, zeroAddress, zeroHash } from "viem";
import { settlementAbi, vaultAbi } from "./abi.js";
import { type Allocation, allocationLeafValues } from "./merkle.js";

/** The few reads the SDK makes (a viem PublicClient fits). */
export type ChainReader = Pick<PublicClient, "readContract" | "getChainId">;

export interface AuctionKeyState {
  publicKey: Hex;
  commitment: Hex;
  privateKey: Hex;
  revealed: boolean;
  committed: boolean;
}

export async function readAuctionKey(chain: ChainReader, settlement: Address, auctionId: bigint): Promise<AuctionKeyState> {
  const [publicKey, commitment, privateKey, revealed] = await chain.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: "auctionKey",
    args: [auctionId],
  });
  return { publicKey, commitment, privateKey, revealed, committed: commitment !== zeroHash };
}

export async function readReceiptSigner(chain: ChainReader, settlement: Address): Promise<Address> {
  return getAddress(
    await chain.readContract({ address: settlement, abi: settlementAbi, functionName: "receiptSigner" }),
  );
}

export async function readNonce(chain: ChainReader, settlement: Address, auctionId: bigint, redemptionId: bigint): Promise<bigint> {
  return chain.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: "nonce",
    args: [auctionId, redemptionId],
  });
}

export async function readVault(chain: ChainReader, settlement: Address): Promise<Address> {
  return getAddress(await chain.readContract({ address: settlement, abi: settlementAbi, functionName: "vault" }));
}

export async function readSharePrice(chain: ChainReader, vault: Address): Promise<bigint> {
  return chain.readContract({ address: vault, abi: vaultAbi, functionName: "redemptionSharePrice" });
}

export async function readIsClaimed(chain: ChainReader, settlement: Address, auctionId: bigint, redemptionId: bigint): Promise<boolean> {
  return chain.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: "isClaimed",
    args: [auctionId, redemptionId],
  });
}

export interface SettledAuction {
  allocationRoot: Hex;
  bidBookRoot: Hex;
  settled: boolean;
}

export async function readSettledAuction(chain: ChainReader, settlement: Address, auctionId: bigint): Promise<SettledAuction> {
  const v = await chain.readContract({ address: settlement, abi: settlementAbi, functionName: "auction", args: [auctionId] });
  return { allocationRoot: v[0], bidBookRoot: v[1], settled: v[8] !== 0n };
}

/** One of a holder's redemption requests. */
export interface RedemptionRequest {
  id: bigint;
  controller: Address;
  pendingShares: bigint;
  redemptionTimestamp: bigint;
}

/** The requests `controller` holds in the vault's queue (ids with pending or redeemable shares). */
export async function readRequests(chain: ChainReader, vault: Address, controller: Address): Promise<RedemptionRequest[]> {
  const ids = await chain.readContract({ address: vault, abi: vaultAbi, functionName: "redemptionIds", args: [controller] });
  const out: RedemptionRequest[] = [];
  for (const id of ids) {
    const [r] = await chain.readContract({ address: vault, abi: vaultAbi, functionName: "redemption", args: [id] });
    out.push({
      id,
      controller: getAddress(r.controller),
      pendingShares: r.pendingShares,
      redemptionTimestamp: r.redemptionTimestamp,
    });
  }
  return out;
}

/** Calldata of `QEVSettlement.claim(T, id, controller, filled, burnt, payout, proof)`. */
export function claimCalldata(allocation: Allocation): Hex {
  const [auctionId, redemptionId, controller, filled, burnt, payout] = allocationLeafValues(allocation.leaf);
  return encodeFunctionData({
    abi: settlementAbi,
    functionName: "claim",
    args: [auctionId, redemptionId, controller, filled, burnt, payout, allocation.proof],
  });
}

/** Calldata of `QEVSettlement.incrementNonce(T, id)`: the on-chain cancel (3.2). */
export function incrementNonceCalldata(auctionId: bigint, redemptionId: bigint): Hex {
  return encodeFunctionData({ abi: settlementAbi, functionName: "incrementNonce", args: [auctionId, redemptionId] });
}

export { zeroAddress };
