#!/usr/bin/env node
// Compiles every contracts/src/*.sol with the pinned solc (package.json) and writes
// one artifact per deployable contract: <outDir>/<Name>.json with
//   { "abi": [...], "bytecode": "0x...", "deployedBytecode": "0x..." }.
//
// Usage: node build.js [outDir]     (outDir defaults to contracts/out)
//
// Output is deterministic: sources are read in sorted order under path-independent
// names, metadata (and its CBOR trailer) is left out of the bytecode, object keys are
// sorted and the JSON is pretty-printed with a trailing newline.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const ROOT = __dirname;
const SRC_DIR = path.join(ROOT, 'src');
const outDir = path.resolve(process.argv[2] || path.join(ROOT, 'out'));

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  // "paris": no PUSH0, so the code also runs on pre-Shanghai forks.
  evmVersion: 'paris',
  metadata: { bytecodeHash: 'none', appendCBOR: false },
  outputSelection: {
    '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
  },
};

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const sorted = {};
    for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key]);
    return sorted;
  }
  return value;
}

function main() {
  const files = fs.readdirSync(SRC_DIR).filter((f) => f.endsWith('.sol')).sort();
  if (files.length === 0) throw new Error(`no .sol files in ${SRC_DIR}`);

  const sources = {};
  for (const f of files) {
    sources[`src/${f}`] = { content: fs.readFileSync(path.join(SRC_DIR, f), 'utf8') };
  }

  const input = { language: 'Solidity', sources, settings: SETTINGS };
  // Every file in src/ is already in `sources`; anything else is an error.
  const findImports = (p) => ({ error: `import not found: ${p} (only src/*.sol is available)` });
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const diagnostics = output.errors || [];
  const errors = diagnostics.filter((e) => e.severity === 'error');
  for (const d of diagnostics) process.stderr.write((d.formattedMessage || d.message) + '\n');
  if (errors.length > 0) {
    process.stderr.write(`solc ${solc.version()}: compilation failed with ${errors.length} error(s)\n`);
    process.exit(1);
  }

  const artifacts = new Map();
  for (const sourceName of Object.keys(output.contracts || {}).sort()) {
    const contracts = output.contracts[sourceName];
    for (const name of Object.keys(contracts).sort()) {
      const c = contracts[name];
      const bytecode = c.evm.bytecode.object;
      // Interfaces and abstract contracts have no code: nothing to deploy.
      if (!bytecode) continue;
      if (artifacts.has(name)) {
        throw new Error(`duplicate contract name ${name} (${artifacts.get(name).source} and ${sourceName})`);
      }
      artifacts.set(name, {
        source: sourceName,
        json: sortKeys({
          abi: c.abi,
          bytecode: '0x' + bytecode,
          deployedBytecode: '0x' + c.evm.deployedBytecode.object,
        }),
      });
    }
  }

  fs.mkdirSync(outDir, { recursive: true });
  // Drop artifacts of contracts that no longer exist so outDir mirrors src/ exactly.
  for (const f of fs.readdirSync(outDir)) {
    if (f.endsWith('.json') && !artifacts.has(f.slice(0, -'.json'.length))) {
      fs.unlinkSync(path.join(outDir, f));
    }
  }
  for (const [name, { json }] of [...artifacts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  }
  process.stdout.write(
    `solc ${solc.version()}: wrote ${artifacts.size} artifact(s) to ${outDir}: ${[...artifacts.keys()].sort().join(', ')}\n`,
  );
}

try {
  main();
} catch (err) {
  process.stderr.write(`build.js: ${err.stack || err}\n`);
  process.exit(1);
}
