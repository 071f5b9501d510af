#!/usr/bin/env node
// export-artifacts.js <forge out dir> <artifacts dir> Name...
// Writes <artifacts dir>/<Name>.json = {"contractName","abi","bytecode","deployedBytecode"} (0x-hex),
// 2-space indented with a trailing newline, from forge's <out>/<Name>.sol/<Name>.json.
'use strict';
const fs = require('fs');
const path = require('path');
const [outDir, artDir, ...names] = process.argv.slice(2);
if (!outDir || !artDir || names.length === 0) {
  console.error('usage: export-artifacts.js <out> <artifacts> Name...');
  process.exit(2);
}
fs.mkdirSync(artDir, { recursive: true });
const hex = (x) => (x.startsWith('0x') ? x : '0x' + x).toLowerCase();
for (const name of names) {
  const src = path.join(outDir, name + '.sol', name + '.json');
  const j = JSON.parse(fs.readFileSync(src, 'utf8'));
  const bytecode = hex(j.bytecode.object);
  const deployed = hex(j.deployedBytecode.object);
  if (bytecode.length <= 2) throw new Error(name + ': empty bytecode');
  if (Object.keys(j.bytecode.linkReferences || {}).length) throw new Error(name + ': unlinked libraries');
  const art = { contractName: name, abi: j.abi, bytecode, deployedBytecode: deployed };
  fs.writeFileSync(path.join(artDir, name + '.json'), JSON.stringify(art, null, 2) + '\n');
}
