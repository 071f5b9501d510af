// Cross-check driver: runs @openzeppelin/merkle-tree on cases read as JSON from stdin.
// Input: [{types, values, multi: [valueIndex...], ourDump}], output: one result per case.
'use strict';
const path = require('path');
const { StandardMerkleTree } = require(path.join(__dirname, '..', '..', 'node_modules', '@openzeppelin', 'merkle-tree'));

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const out = cases.map((c) => {
    const tree = StandardMerkleTree.of(c.values, c.types);
    const proofs = c.values.map((_, i) => tree.getProof(i));
    const multi = tree.getMultiProof(c.multi);
    const loaded = StandardMerkleTree.load(c.ourDump);
    return {
      root: tree.root,
      proofs,
      multi,
      multiVerified: StandardMerkleTree.verifyMultiProof(tree.root, c.types, multi),
      dump: tree.dump(),
      ourDumpRoot: loaded.root,
      ourDumpProof0: loaded.getProof(0),
    };
  });
  process.stdout.write(JSON.stringify(out));
});
