//! The bench's public surface, for scripts/bench.ts today and a `mirra bench` command later.

export {
  configNames,
  resolveBenchOptions,
  type BenchOptions,
  type RawBenchOptions,
} from "./options.js";
export {
  clusterSpecByName,
  clusterTarget,
  clusterSpecs,
  type ClusterSpec,
} from "./cluster_targets.js";
export { measureResync, renderResync, type ResyncFigures } from "./resync.js";
export { runBench, type BenchOutcome, type Log, type RunBenchExtras } from "./run.js";
export type { BenchReport, RunRecord, WorkloadSummary } from "./report.js";
export { defaultTargets, mirraTarget, nbdkitTarget, type TargetConfig } from "./targets.js";
export { workloads, type Workload } from "./workloads.js";
