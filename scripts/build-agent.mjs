// The agent a VM runs, bundled: `dist/agent/zonal-agent.mjs` and its chunks, built from
// what tsc compiled (dist/src/agent/entry.js). Every VM pays for what its agent holds in
// memory; one bundle spares node's module loader a record per file and each package's
// files their own compiled wrappers (bench/agent-memory.ts measures it). Each job type
// stays its own chunk, loaded only by the agents whose spec names it.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const root = join(import.meta.dirname, "..");
const outdir = join(root, "dist", "agent");

rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { "zonal-agent": join(root, "dist", "src", "agent", "entry.js") },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outExtension: { ".js": ".mjs" },
  // Whitespace and syntax only: stack traces keep their function names.
  minifyWhitespace: true,
  minifySyntax: true,
  // pg asks for pg-native only when told to use it; the agent never does.
  external: ["pg-native"],
  // The CommonJS packages bundled (pg, mariadb) call require() for node's modules.
  banner: {
    js: 'import { createRequire as __zonalRequire } from "node:module"; const require = __zonalRequire(import.meta.url);',
  },
  logLevel: "warning",
});
