/**
 * The holder's journal of bids, kept in this browser's localStorage (never sent anywhere):
 * every receipt the service gave, what was bid, and what happened to it since.
 */
import type { Address, Hex } from "viem";
import type { Receipt } from "@qev/sdk";

export const JOURNAL_KEY = "qev.journal.v1";

export interface JournalEntry {
  auction_id: number;
  redemption_id: string;
  controller: Address;
  chain_id: number;
  settlement: Address;
  /** what was bid, in wei and basis points (kept only here) */
  shares: string;
  basis_point: number;
  ciphertext_hash: Hex;
  receipt: Receipt;
  status: "live" | "superseded" | "cancelled";
  cancel_receipt?: Receipt;
  nonce_tx?: Hex;
  claim_tx?: Hex;
}

export function loadJournal(): JournalEntry[] {
  try {
    const raw = localStorage.getItem(JOURNAL_KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(parsed) ? (parsed as JournalEntry[]) : [];
  } catch {
    return [];
  }
}

export function saveJournal(entries: JournalEntry[]): void {
  localStorage.setItem(JOURNAL_KEY, JSON.stringify(entries));
}

const samePair = (a: JournalEntry, auctionId: number, redemptionId: string, chainId: number, settlement: string) =>
  a.auction_id === auctionId &&
  a.redemption_id === redemptionId &&
  a.chain_id === chainId &&
  a.settlement.toLowerCase() === settlement.toLowerCase();

/** Record a new bid receipt: the pair's previous live entry becomes superseded. */
export function recordBid(entry: JournalEntry): JournalEntry[] {
  const entries = loadJournal();
  for (const e of entries) {
    if (e.status === "live" && samePair(e, entry.auction_id, entry.redemption_id, entry.chain_id, entry.settlement)) {
      if (e.ciphertext_hash.toLowerCase() !== entry.ciphertext_hash.toLowerCase()) e.status = "superseded";
    }
  }
  const same = entries.findIndex(
    (e) => e.ciphertext_hash.toLowerCase() === entry.ciphertext_hash.toLowerCase() &&
      samePair(e, entry.auction_id, entry.redemption_id, entry.chain_id, entry.settlement),
  );
  if (same >= 0) entries[same] = entry;
  else entries.push(entry);
  saveJournal(entries);
  return entries;
}

/** Apply `change` to the entry naming `ciphertextHash` for the pair, and save. */
export function updateEntry(match: JournalEntry, change: Partial<JournalEntry>): JournalEntry[] {
  const entries = loadJournal();
  for (const e of entries) {
    if (
      e.ciphertext_hash.toLowerCase() === match.ciphertext_hash.toLowerCase() &&
      samePair(e, match.auction_id, match.redemption_id, match.chain_id, match.settlement)
    ) {
      Object.assign(e, change);
    }
  }
  saveJournal(entries);
  return entries;
}
