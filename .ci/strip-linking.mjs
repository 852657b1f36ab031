// Removes the custom sections only the splitter reads (`linking`, `reloc.*` and the split
// helpers' marker) from the given wasm files, in place. Usage: node strip-linking.mjs FILE...
import { readFileSync, writeFileSync } from 'node:fs';

const DROP = (name) => name === 'linking' || name.startsWith('reloc.') || name === '__wasm_split_unstable';

/** Reads an unsigned LEB128 number at `at`: [value, next offset]. */
function leb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

for (const file of process.argv.slice(2)) {
  const bytes = readFileSync(file);
  if (bytes.readUInt32LE(0) !== 0x6d736100) throw new Error(`${file}: not a wasm module`);
  const kept = [bytes.subarray(0, 8)];
  let at = 8;
  while (at < bytes.length) {
    const start = at;
    const id = bytes[at++];
    const [size, body] = leb(bytes, at);
    const end = body + size;
    let drop = false;
    if (id === 0) {
      const [length, name] = leb(bytes, body);
      drop = DROP(bytes.toString('utf8', name, name + length));
    }
    if (!drop) kept.push(bytes.subarray(start, end));
    at = end;
  }
  writeFileSync(file, Buffer.concat(kept));
}
