/**
 * Every job type, loaded: what the control plane checks manifests against (the agent
 * loads only what its spec names, through job-modules.ts).
 */
import { loadJobTypes } from "./job-modules.js";

await loadJobTypes();

export { jobType, jobTypeNames, registerJobType } from "./job-modules.js";
