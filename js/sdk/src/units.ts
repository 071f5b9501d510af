/** Human units: sUSDai amounts (18 decimals), a discount in percent, the payout preview (rule 3). */
import { formatUnits, parseUnits } from "viem";
import { BPS, MAX_BASIS_POINT, MIN_BASIS_POINT, PRICE_SCALE } from "./protocol.js";

export class InputError extends Error {
  override name = "InputError";
}

const AMOUNT = /^(\d{1,59})(?:\.(\d{0,18}))?$/;
const PERCENT = /^(\d{1,3})(?:\.(\d{0,2}))?$/;

/** `"12.5"` sUSDai -> 12.5e18 wei; refuses anything but a plain decimal with <= 18 places. */
export function parseShares(text: string): bigint {
  const t = text.trim();
  if (!AMOUNT.test(t)) throw new InputError("Enter the shares as a number of sUSDai, e.g. 250 or 12.5");
  return parseUnits(t.endsWith(".") ? t.slice(0, -1) : t, 18);
}

export function formatShares(wei: bigint, places = 6): string {
  const [whole, frac = ""] = formatUnits(wei, 18).split(".");
  const cut = frac.slice(0, places).replace(/0+$/, "");
  return cut ? `${whole}.${cut}` : whole!;
}

/** `"2.5"` % -> 250 basis points; the protocol allows 0.1 % (10 bp) to 100 % (10000 bp). */
export function parseDiscount(text: string): bigint {
  const t = text.trim();
  const m = PERCENT.exec(t);
  if (!m) throw new InputError("Enter the discount in percent with at most two decimals, e.g. 2.5");
  const bp = BigInt(m[1]!) * 100n + BigInt((m[2] ?? "").padEnd(2, "0") || "0");
  if (bp < MIN_BASIS_POINT || bp > MAX_BASIS_POINT) {
    throw new InputError("The discount must be between 0.1 % and 100 %");
  }
  return bp;
}

export function formatDiscount(bp: bigint): string {
  const whole = bp / 100n;
  const frac = (bp % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : whole.toString();
}

/** Rule 3 for a full fill of `shares` at `bp`: burnt = floor(x b / 1e4), payout = floor((x - burnt) p / 1e18). */
export function preview(shares: bigint, bp: bigint, price: bigint): { burnt: bigint; payout: bigint } {
  const burnt = (shares * bp) / BPS;
  return { burnt, payout: ((shares - burnt) * price) / PRICE_SCALE };
}
