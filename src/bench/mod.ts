//! The bench's public surface: `mirra bench`, scripts/bench.ts and the tests use it.

export { runBenchCommand, targetConfigByName } from "./command.js";
export { iopsChart, latencyChart, renderChartSvg, writeCharts, type ChartSpec } from "./chart.js";
export { cephRbdTarget, qemuQuorumTarget } from "./peer_targets.js";
export { rawTarget } from "./raw_target.js";
export { Progress, statusLine } from "./progress.js";
export {
  addBenchOptions,
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
export {
  runBench,
  type BenchOutcome,
  type BenchStep,
  type Log,
  type RunBenchExtras,
} from "./run.js";
export type { BenchReport, NotRunRecord, RunRecord, WorkloadSummary } from "./report.js";
export {
  defaultTargets,
  mirraTarget,
  nbdkitTarget,
  TargetUnavailableError,
  type TargetConfig,
} from "./targets.js";
export { workloads, type Workload } from "./workloads.js";
