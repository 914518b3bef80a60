/**
 * How zonal's folders may depend on each other (`npm run deps`, run by `npm test`).
 * Read from the bottom up: lib, wire, placement, strategies, store, cloud, ha, jobs,
 * agent, manifest, health, director, broker, control-plane, cli. A rule names the
 * dependency it forbids and why; a new cycle fails the check.
 */
const folder = (name) => `^src/${name}/`;

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "modules import each other in one direction only",
      from: {},
      to: { circular: true },
    },
    {
      name: "no-folder-cycles",
      severity: "error",
      comment: "top-level folders depend on each other in one direction only",
      scope: "folder",
      from: {},
      to: { circular: true },
    },
    {
      name: "health-not-director",
      severity: "error",
      comment:
        "the health monitor decides; the director acts. It reads through interfaces it owns (MonitorContext).",
      from: { path: folder("health") },
      to: { path: folder("director") },
    },
    {
      name: "store-not-director",
      severity: "error",
      comment: "the store keeps records; it knows nothing of who drives them",
      from: { path: folder("store") },
      to: { path: `${folder("director")}|${folder("health")}|${folder("broker")}` },
    },
    {
      name: "jobs-not-agent",
      severity: "error",
      comment: "job types are plug-ins the agent runs; they see only job-type.ts's JobContext",
      from: { path: folder("jobs") },
      to: { path: folder("agent") },
    },
    {
      name: "cli-not-store",
      severity: "error",
      comment: "the CLI speaks to the API; what it reads are wire types (src/wire), never the store",
      from: { path: folder("cli") },
      to: { path: folder("store") },
    },
    {
      name: "services-through-the-registry",
      severity: "error",
      comment:
        "a data service's or job type's folder is reached through src/jobs (its interfaces and registries), never directly",
      from: { path: "^src/", pathNot: "^src/jobs/|^src/testing/" },
      to: { path: "^src/jobs/[^/]+/" },
    },
    {
      name: "no-test-helpers-in-production",
      severity: "error",
      comment: "src/testing is for tests: nothing zonal runs imports it",
      from: { path: "^src/", pathNot: "^src/testing/" },
      to: { path: "^src/testing/" },
    },
    {
      name: "director-not-composition",
      severity: "error",
      comment:
        "the composition root (src/control-plane) wires director, health monitor, broker and listeners; nothing below it imports it or the broker",
      from: { path: `${folder("director")}|${folder("health")}` },
      to: { path: `${folder("control-plane")}|${folder("broker")}` },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.test\\.ts$" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
    },
  },
};
