// Baseline for benchmarks/bench_merkle_oz.py: build an OpenZeppelin StandardMerkleTree in Node.
//
// Usage: node benchmarks/oz_tree.js VALUES.json
//   VALUES.json = {"leafEncoding": [...], "values": [[...], ...]} (uints as decimal strings,
//   addresses EIP-55). Prints one JSON line {"root", "ms", "leaves"}; "ms" is measured around
//   StandardMerkleTree.of only (reading and parsing the file are excluded).
'use strict';

const fs = require('fs');
const { performance } = require('perf_hooks');
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const t0 = performance.now();
const tree = StandardMerkleTree.of(input.values, input.leafEncoding);
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ root: tree.root, ms, leaves: input.values.length }) + '\n');
