// The agent a VM runs, bundled: `dist/agent/zonal-agent.mjs` and its chunks, built from
// what tsc compiled (dist/src/agent/entry.js). Every VM pays for what its agent holds in
// memory; one bundle spares node's module loader a record per file and each package's
// files their own compiled wrappers (bench/agent-memory.ts measures it). Each job type
// stays its own chunk, loaded only by the agents whose spec names it.
//
// A build adds its files next to the previous build's (chunk names carry their
// content's hash): an agent still running an older build loads a job type's chunk
// later, and finds the one it was built with. meta.json says which files this build
// made (bundle.test.ts reads it).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const root = join(import.meta.dirname, "..");
const outdir = join(root, "dist", "agent");

const result = await build({
  absWorkingDir: root, // meta.json's paths are relative to the repository
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
  metafile: true,
});
writeFileSync(join(outdir, "meta.json"), JSON.stringify(result.metafile));
