/** @qev/sdk: a holder's JavaScript SDK for qev sealed-bid auctions (docs/PROTOCOL.md). */
export * from "./abi.js";
export * from "./chain.js";
export * from "./client.js";
export * from "./eip712.js";
export * from "./hpke.js";
export * from "./merkle.js";
export * from "./protocol.js";
export * from "./receipts.js";
export * from "./units.js";
