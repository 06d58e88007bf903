//! The resync rate controller, after DRBD's dynamic controller (drbd_rs_controller): it
//! plans `cPlanAheadTicks` ticks ahead to keep `cFillTargetSectors` of resync data in
//! flight, bounded by `cMaxRateKiBps`, and drops to `cMinRateKiBps` while application IO
//! is active. With cPlanAheadTicks = 0 it is a fixed rate (resyncRateKiBps).
//! Units: blocks of 4 KiB per tick. Invariant: the plan's total equals the sum of its slots.

import { assert } from "../stdx/assert.js";
import type { ResourceOptions } from "./types.js";

const sectorsPerBlock = 8;

export class RateController {
  private readonly plan: number[];
  private planTotal = 0;
  private planHead = 0;
  /** Fractional blocks carried between ticks so low rates still progress. */
  private carry = 0;

  constructor(private readonly options: ResourceOptions) {
    this.plan = new Array<number>(Math.max(1, options.cPlanAheadTicks)).fill(0);
  }

  /**
   * Blocks of resync to request in this tick.
   * @param inFlightBlocks resync blocks requested but not yet answered
   * @param doneLastTickBlocks resync blocks answered during the last tick
   * @param appIoActive application IO happened during the last tick
   */
  blocksThisTick(inFlightBlocks: number, doneLastTickBlocks: number, appIoActive: boolean): number {
    const o = this.options;
    const kibPerTick = (kibps: number): number => (kibps * o.tickMs) / 1000 / 4;
    let want: number;
    if (o.cPlanAheadTicks === 0 || o.cFillTargetSectors === 0) {
      want = kibPerTick(o.resyncRateKiBps);
    } else {
      const steps = this.plan.length;
      const fillBlocks = Math.max(1, o.cFillTargetSectors / sectorsPerBlock);
      const correction = fillBlocks - inFlightBlocks - this.planTotal;
      const perStep = correction / steps;
      for (let i = 0; i < steps; i++) this.plan[i] = this.plan[i]! + perStep;
      this.planTotal += perStep * steps;
      const current = this.plan[this.planHead]!;
      this.plan[this.planHead] = 0;
      this.planHead = (this.planHead + 1) % steps;
      this.planTotal -= current;
      want = doneLastTickBlocks + current;
    }
    if (o.cMaxRateKiBps > 0) want = Math.min(want, kibPerTick(o.cMaxRateKiBps));
    if (appIoActive && o.cMinRateKiBps > 0) want = Math.min(want, kibPerTick(o.cMinRateKiBps));
    if (want < 0) want = 0;
    want += this.carry;
    const blocks = Math.floor(want);
    this.carry = Math.min(want - blocks, 1);
    assert(blocks >= 0, "non-negative rate");
    // Never stall completely: one block per tick keeps a resync moving.
    return inFlightBlocks === 0 && blocks === 0 ? 1 : blocks;
  }
}
