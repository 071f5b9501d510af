#!/usr/bin/env node
// Writes test/fixtures/standard-tree.json: an allocation tree built with @openzeppelin/merkle-tree
// (StandardMerkleTree, leaf = abi.encode(uint64,uint256,address,uint256,uint256,uint256)), so the forge
// tests can check that the contract's leaf hash and the Solidity tree port agree with the JS library.
// Deterministic; committed. Regenerate: node contracts/script/gen-merkle-fixture.js
'use strict';
const path = require('path');
const fs = require('fs');
const { StandardMerkleTree } = require(path.join(__dirname, '..', '..', 'node_modules', '@openzeppelin', 'merkle-tree'));

const auctionId = 1700000000n + 30n * 86400n;
const values = [];
for (let i = 1; i <= 11; i++) {
  const controller = '0x' + (0x1000 + i).toString(16).padStart(40, '0');
  const filled = BigInt(i) * 10n ** 18n + BigInt(i * 7);
  const burnt = (filled * BigInt(10 * i)) / 10000n;
  const payout = ((filled - burnt) * 1050000000000000000n) / 10n ** 18n;
  values.push([auctionId.toString(), String(i * 3), controller, filled.toString(), burnt.toString(), payout.toString()]);
}
const tree = StandardMerkleTree.of(values, ['uint64', 'uint256', 'address', 'uint256', 'uint256', 'uint256']);
const multiIdx = [1, 4, 5, 9];
const mp = tree.getMultiProof(multiIdx);
// order of mp.leaves as input indices
const leafIndex = mp.leaves.map((v) => values.findIndex((w) => w.join() === v.join()));
const out = {
  root: tree.root,
  auctionId: auctionId.toString(),
  redemptionIds: values.map((v) => v[1]),
  controllers: values.map((v) => v[2]),
  sharesFilled: values.map((v) => v[3]),
  sharesBurnt: values.map((v) => v[4]),
  payouts: values.map((v) => v[5]),
  leafHashes: values.map((v) => tree.leafHash(v)),
  proof0: tree.getProof(0),
  proof7: tree.getProof(7),
  multiLeafIndex: leafIndex,
  multiProof: mp.proof,
  multiProofFlags: mp.proofFlags,
};
fs.writeFileSync(path.join(__dirname, '..', 'test', 'fixtures', 'standard-tree.json'), JSON.stringify(out, null, 2) + '\n');
console.log('root', tree.root);
