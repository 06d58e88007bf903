//! What the bench shows while it runs. On a terminal (stdout and stderr both TTYs) a status
//! line at the bottom of stderr is redrawn in place: the step, runs done, elapsed time and the
//! measuring time still ahead; log lines scroll above it. Otherwise (piped, CI, a test) every
//! step and log line is a plain line, so a log file reads top to bottom.

import type { BenchStep } from "./run.js";

export interface ProgressStream {
  readonly isTTY?: boolean;
  /** Terminal width; a status line longer than this would wrap and could not be redrawn. */
  readonly columns?: number;
  write(text: string): boolean;
}

/** Redraw period of the status line on a terminal, for the elapsed-time clock. */
const redrawIntervalMs = 1000;

export class Progress {
  private status = "";
  private step: BenchStep | null = null;
  private readonly startMs = performance.now();
  private timer: NodeJS.Timeout | null = null;

  /** @param live redraw a status line in place (a terminal) instead of printing plain lines */
  constructor(
    private readonly out: ProgressStream,
    private readonly live: boolean,
  ) {
    if (live) {
      this.timer = setInterval(() => this.redraw(), redrawIntervalMs);
      // The clock must never keep the process alive on its own.
      this.timer.unref();
    }
  }

  /** Live on a terminal, plain lines otherwise (see the module header). */
  static forProcess(): Progress {
    return new Progress(
      process.stderr,
      process.stderr.isTTY === true && process.stdout.isTTY === true,
    );
  }

  /** A line that stays, e.g. a run's figures or a failure. */
  log(line: string): void {
    if (!this.live) {
      this.out.write(`bench: ${line}\n`);
      return;
    }
    this.clear();
    this.out.write(`bench: ${line}\n`);
    this.redraw();
  }

  onStep(step: BenchStep): void {
    this.step = step;
    if (this.live) this.redraw();
    else if (step.phase === "setup") this.out.write(`bench: ${step.label}\n`);
    // Plain measured runs are announced by their result line (log), one line per run.
  }

  /** Removes the status line and stops the clock; call before printing the report. */
  done(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.live) this.clear();
    this.step = null;
  }

  private clear(): void {
    if (this.status !== "") this.out.write("\r\x1b[K");
    this.status = "";
  }

  private redraw(): void {
    if (this.step === null) return;
    this.clear();
    const line = statusLine(this.step, (performance.now() - this.startMs) / 1000);
    const columns = this.out.columns ?? 0;
    this.status = columns > 1 && line.length >= columns ? `${line.slice(0, columns - 2)}…` : line;
    this.out.write(this.status);
  }
}

/** "[3/24] randread on 1r, repeat 1 · 0:42 elapsed · ≥ 3:30 of runs left". */
export function statusLine(step: BenchStep, elapsedSeconds: number): string {
  const counter = step.phase === "setup" ? "[setup]" : `[${step.done + 1}/${step.total}]`;
  const left = step.phase === "measure" ? ` · ≥ ${clock(step.secondsLeftMin)} of runs left` : "";
  return `bench ${counter} ${step.label} · ${clock(elapsedSeconds)} elapsed${left}`;
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
